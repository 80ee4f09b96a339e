"""Registration of the Modbus connector kind."""

from __future__ import annotations

from connectors.base import ConnectorKind
from connectors.modbus.config import ModbusConnection, validate_binding
from connectors.modbus.connector import create

KIND = ConnectorKind(
    name="modbus",
    connection_model=ModbusConnection,
    validate_binding=validate_binding,
    create=create,
)
