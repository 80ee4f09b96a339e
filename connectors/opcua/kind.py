"""Registration of the OPC UA connector kind: its connection model, binding validator and factory."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from connectors.base import BoundSignal, ConnectorKind, LinkHealth
from connectors.common.simulated_machine import SimulatedMachine
from connectors.opcua.config import OpcUaBinding, OpcUaConnection
from connectors.opcua.connector import OpcUaConnector
from connectors.opcua.simulator import OpcUaSimulator
from models.assets import DataType


def validate_binding(raw: dict[str, Any], data_type: DataType) -> OpcUaBinding:
    """Validate one signal's binding; raises pydantic ValidationError so the caller can add the path."""
    del data_type  # every parklink type can sit in a Variant; the server's type is checked at write time
    return OpcUaBinding.model_validate(raw)


def create(conn: OpcUaConnection, signals: Sequence[BoundSignal], health: LinkHealth) -> OpcUaConnector:
    """A connector for one OPC UA server; does no I/O until `run`."""
    return OpcUaConnector(conn, signals, health)


def simulate(conn: OpcUaConnection, machines: Sequence[SimulatedMachine]) -> OpcUaSimulator:
    """An asyncua server at the connection's endpoint serving `machines` (demo and tests)."""
    return OpcUaSimulator(conn.endpoint, machines)


KIND = ConnectorKind(
    name="opcua",
    connection_model=OpcUaConnection,
    validate_binding=validate_binding,
    create=create,
    simulate=simulate,
)
