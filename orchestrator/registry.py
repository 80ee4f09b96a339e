"""The connector kinds parklink knows: an explicit name → kind map, no import-time registration.

A new protocol is a new folder under connectors/ exporting `KIND`, plus one line here.
"""

from __future__ import annotations

from connectors.base import ConnectorKind


def builtin_kinds() -> dict[str, ConnectorKind]:
    """Every connector kind shipped with parklink, by name."""
    from connectors.modbus.kind import KIND as modbus
    from connectors.opcua.kind import KIND as opcua
    from connectors.replay.kind import KIND as replay

    return {kind.name: kind for kind in (opcua, modbus, replay)}
