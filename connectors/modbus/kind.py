"""Registration of the Modbus connector kind."""

from __future__ import annotations

from collections.abc import Sequence

from connectors.base import BoundSignal, ConnectorKind, LinkHealth
from connectors.common.simulated_machine import SimulatedMachine
from connectors.modbus.config import ModbusConnection, validate_binding
from connectors.modbus.connector import ModbusConnector, create
from connectors.modbus.simulator import ModbusSimulator


def explain(conn: ModbusConnection, signals: Sequence[BoundSignal]) -> str:
    """The requests one poll sends (`parklink validate --explain`); no I/O."""
    return ModbusConnector(conn, signals, LinkHealth("explain", "modbus", "")).explain()


def simulate(conn: ModbusConnection, machines: Sequence[SimulatedMachine]) -> ModbusSimulator:
    """A pymodbus server at the connection's address; machine i answers as unit id i + 1."""
    return ModbusSimulator(conn.host, conn.port, machines)


KIND = ConnectorKind(
    name="modbus",
    connection_model=ModbusConnection,
    validate_binding=validate_binding,
    create=create,
    explain=explain,
    simulate=simulate,
)
