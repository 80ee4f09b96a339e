"""The link under the poll loop: one pymodbus client per connection, for each transport.

- `tcp`: Modbus TCP (MBAP header with a transaction id, socket framer).
- `rtu_over_tcp`: RTU frames (unit id, PDU, CRC; no transaction id) through a TCP serial gateway.
- `rtu`: RTU frames on a serial line through pyserial.

Every client gets strict response classes for FC1-FC4: pymodbus 3.16.1 decodes a read response
without checking its byte count against the frame (coils ignore it; an odd register byte count is
truncated), and a byte count larger than the frame raises inside the protocol callback, which drops
the connection. The strict classes decode only a well-formed response and flag anything else as
`malformed`, so the connector can reject that one request and keep the link.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Awaitable, Callable

from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient
from pymodbus.client.mixin import ModbusClientMixin
from pymodbus.framer import FramerType
from pymodbus.pdu import ModbusPDU
from pymodbus.pdu.bit_message import ReadCoilsResponse, ReadDiscreteInputsResponse
from pymodbus.pdu.register_message import ReadHoldingRegistersResponse, ReadInputRegistersResponse
from pymodbus.pdu.utils import unpack_bitstring

from connectors.modbus.config import ModbusConnection
from connectors.modbus.planner import Request

Client = AsyncModbusTcpClient | AsyncModbusSerialClient
RTU_MIN_GAP_FAST = (
    0.00175  # s: fixed inter-frame gap above 19200 baud (Modbus over Serial Line V1.02 §2.5.1.1)
)


def _byte_count_problem(data: bytes) -> str:
    if not data:
        return "empty response"
    if data[0] != len(data) - 1:
        return f"byte count {data[0]} but {len(data) - 1} data bytes"
    return ""


class StrictHoldingRegisters(ReadHoldingRegistersResponse):
    """FC3 response that decodes only when its byte count is even and matches the frame.

    Besides `registers` it keeps the data bytes as they came (`raw`), which the decoder unpacks
    directly.
    """

    malformed = ""
    raw = b""

    def decode(self, data: bytes) -> None:
        self.malformed = _byte_count_problem(data) or ("odd byte count" if data[0] % 2 else "")
        if self.malformed:
            self.registers = []
            return
        self.raw = data[1:]
        self.registers = list(struct.unpack(f">{data[0] // 2}H", self.raw))


class StrictInputRegisters(ReadInputRegistersResponse):
    """FC4 response, strict as `StrictHoldingRegisters`."""

    malformed = ""
    raw = b""

    def decode(self, data: bytes) -> None:
        StrictHoldingRegisters.decode(self, data)  # type: ignore[arg-type]


class StrictCoils(ReadCoilsResponse):
    """FC1 response that decodes only when its byte count matches the frame."""

    malformed = ""

    def decode(self, data: bytes) -> None:
        self.malformed = _byte_count_problem(data)
        self.bits = [] if self.malformed else unpack_bitstring(data[1:])


class StrictDiscreteInputs(ReadDiscreteInputsResponse):
    """FC2 response, strict as `StrictCoils`."""

    malformed = ""

    def decode(self, data: bytes) -> None:
        StrictCoils.decode(self, data)  # type: ignore[arg-type]


STRICT_RESPONSES = (StrictCoils, StrictDiscreteInputs, StrictHoldingRegisters, StrictInputRegisters)


def open_client(conn: ModbusConnection) -> Client:
    """A pymodbus client for the connection, not yet connected.

    reconnect_delay=0: pymodbus must not reconnect behind our back; the connector owns reconnects.
    """
    client: Client
    if conn.transport == "rtu":
        assert conn.serial_port is not None  # the config guarantees it
        client = AsyncModbusSerialClient(
            conn.serial_port,
            framer=FramerType.RTU,
            baudrate=conn.baudrate,
            bytesize=conn.bytesize,
            parity=conn.parity,
            stopbits=conn.stopbits,
            timeout=conn.timeout,
            retries=conn.retries,
            reconnect_delay=0,
        )
    else:
        assert conn.host is not None
        framer = FramerType.RTU if conn.transport == "rtu_over_tcp" else FramerType.SOCKET
        client = AsyncModbusTcpClient(
            conn.host,
            port=conn.port,
            framer=framer,
            timeout=conn.timeout,
            retries=conn.retries,
            reconnect_delay=0,
        )
    for response_class in STRICT_RESPONSES:
        client.register(response_class)
    return client


def character_time(conn: ModbusConnection) -> float:
    """Seconds one character takes on the serial line: start bit, data bits, parity, stop bits."""
    bits = 1 + conn.bytesize + (0 if conn.parity == "N" else 1) + conn.stopbits
    return bits / conn.baudrate


def request_gap(conn: ModbusConnection) -> float:
    """Least time from the end of one exchange to the next request.

    On a serial line a frame ends with 3.5 character times of silence (1.75 ms above 19200 baud).
    pymodbus' async serial client does not wait for it, so the connector does; TCP links and
    gateways only get `pause_between_requests`.
    """
    if conn.transport != "rtu":
        return conn.pause_between_requests
    silence = 3.5 * character_time(conn) if conn.baudrate <= 19200 else RTU_MIN_GAP_FAST
    return max(conn.pause_between_requests, silence)


_READ = {
    "holding": ModbusClientMixin.read_holding_registers,
    "input": ModbusClientMixin.read_input_registers,
    "coil": ModbusClientMixin.read_coils,
    "discrete": ModbusClientMixin.read_discrete_inputs,
}


async def read(client: Client, req: Request) -> ModbusPDU:
    """Send one read request of the plan; pymodbus raises on timeouts and lost links."""
    return await _READ[req.table](client, req.address, count=req.count, device_id=req.unit_id)


WriteCall = Callable[[Client, None], Awaitable[ModbusPDU]]


def write_call(table: str, address: int, words: list[int], unit: int) -> tuple[int, WriteCall]:
    """The function code and the call that write `words`: FC5 coil, FC6 one register, FC16 several."""
    if table == "coil":
        return 5, lambda c, _: c.write_coil(address, bool(words[0]), device_id=unit)
    if len(words) == 1:
        return 6, lambda c, _: c.write_register(address, words[0], device_id=unit)
    return 16, lambda c, _: c.write_registers(address, words, device_id=unit)


def raise_if_cancelled() -> None:
    """Re-raise a cancellation that Python 3.11's asyncio.wait_for (used inside pymodbus) swallowed.

    In 3.11, wait_for returns the inner result when the cancel arrives just as the result does, and
    the cancel is lost: at high request rates a connector would then never stop. The request to
    cancel is still counted by `Task.cancelling()`.
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError
