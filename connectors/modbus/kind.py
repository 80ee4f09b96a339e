"""Registration of the Modbus connector kind."""

from __future__ import annotations

from collections.abc import Sequence

from connectors.base import BoundSignal, ConnectorKind
from connectors.common.simulated_machine import SimulatedMachine
from connectors.modbus import schedule
from connectors.modbus.binding import ModbusBinding
from connectors.modbus.config import ModbusConnection, validate_binding
from connectors.modbus.connector import create
from connectors.modbus.simulator import ModbusSimulator


def explain(conn: ModbusConnection, signals: Sequence[BoundSignal]) -> str:
    """The requests each poll group sends (`parklink validate --explain`); no I/O, no log lines."""
    return schedule.explain(conn, schedule.build_schedule(conn, signals), signals)


def simulate(conn: ModbusConnection, machines: Sequence[SimulatedMachine]) -> ModbusSimulator:
    """A pymodbus server at the connection's address; machine i answers as unit id i + 1.

    For transport rtu the simulator lays a virtual serial line (two bridged ptys) and puts a symlink
    to its client end at the connection's `serial_port`, which must not be an existing device.
    """
    if conn.transport == "rtu":
        return ModbusSimulator(
            "",
            0,
            machines,
            transport="rtu",
            serial_port=conn.serial_port,
            baudrate=conn.baudrate,
            parity="N",  # a pty carries no parity, and recent kernels refuse to set one on it
            stopbits=conn.stopbits,
        )
    return ModbusSimulator(conn.host or "127.0.0.1", conn.port, machines, transport=conn.transport)


def check_binding(conn: ModbusConnection, binding: ModbusBinding) -> tuple[str, str] | None:
    """A binding's poll group must exist; serial lines address unit ids 1-247 only."""
    if binding.poll_group is not None and binding.poll_group not in conn.poll_groups:
        known = ", ".join(sorted(conn.poll_groups)) or "none declared"
        return "poll_group", f"connection has no poll group {binding.poll_group!r} (poll_groups: {known})"
    if conn.transport != "tcp" and not 1 <= binding.unit_id <= 247:
        return "unit_id", f"unit id {binding.unit_id} cannot be addressed on a serial line (1-247)"
    return None


KIND = ConnectorKind(
    name="modbus",
    connection_model=ModbusConnection,
    validate_binding=validate_binding,
    create=create,
    explain=explain,
    simulate=simulate,
    check_binding=check_binding,
)
