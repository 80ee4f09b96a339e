"""Modbus connector (TCP, RTU on a serial line, RTU over TCP): config models, codec, read planner,
poll loop and a device simulator.

The registry imports `connectors.modbus.kind.KIND`; the rest of parklink never imports pymodbus.
"""

from connectors.modbus.config import ModbusBinding, ModbusConnection, ReadableRange, validate_binding

__all__ = ["ModbusBinding", "ModbusConnection", "ReadableRange", "validate_binding"]
