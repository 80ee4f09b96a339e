"""A hand-written Modbus server for fault tests: it answers read requests in a chosen `mode`, from
correct to malformed in the ways real devices and gateways get it wrong. Frames are built here with
struct and an independent CRC, not with pymodbus.

Correct values: register a reads 1000 + a; coil a is on when a % 3 == 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
from collections.abc import Callable

# mode → (answer for: tid, unit, fc, address, count) → frame bytes, or None for no answer
Answer = Callable[[int, int, int, int, int], bytes | None]


def register_value(address: int) -> int:
    """What a correct answer carries for one register."""
    return 1000 + address


def coil_value(address: int) -> bool:
    """What a correct answer carries for one coil."""
    return address % 3 == 0


def crc16(frame: bytes) -> bytes:
    """Modbus RTU CRC (polynomial 0xA001, initial 0xFFFF), low byte first."""
    crc = 0xFFFF
    for byte in frame:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return struct.pack("<H", crc)


def payload(fc: int, address: int, count: int, extra: int = 0) -> bytes:
    """Byte count and data of a correct read answer; `extra` values more (or fewer, if negative)."""
    n = count + extra
    if fc in (1, 2):
        bits = [coil_value(address + i) for i in range(n)]
        data = bytes(sum(1 << j for j in range(8) if i + j < n and bits[i + j]) for i in range(0, n, 8))
    else:
        data = struct.pack(f">{n}H", *(register_value(address + i) for i in range(n)))
    return bytes([len(data)]) + data


def mbap(tid: int, unit: int, pdu: bytes, protocol: int = 0) -> bytes:
    """A Modbus TCP frame."""
    return struct.pack(">HHHB", tid, protocol, len(pdu) + 1, unit) + pdu


def rtu(unit: int, pdu: bytes, good_crc: bool = True) -> bytes:
    """An RTU frame (for RTU over TCP)."""
    frame = bytes([unit]) + pdu
    crc = crc16(frame)
    return frame + (crc if good_crc else bytes([crc[0] ^ 0xFF, crc[1]]))


def _ok(tid: int, u: int, fc: int, a: int, c: int) -> bytes:
    return mbap(tid, u, bytes([fc]) + payload(fc, a, c))


TCP_MODES: dict[str, Answer] = {
    "ok": _ok,
    "short_count": lambda tid, u, fc, a, c: mbap(
        tid, u, bytes([fc]) + payload(fc, a, c, -1 if fc > 2 else -8)
    ),
    "long_count": lambda tid, u, fc, a, c: mbap(tid, u, bytes([fc]) + payload(fc, a, c, 1 if fc > 2 else 8)),
    # the byte count claims 4 bytes more than the frame carries (MBAP length is right)
    "byte_count_lies": lambda tid, u, fc, a, c: mbap(
        tid, u, bytes([fc, payload(fc, a, c)[0] + 4]) + payload(fc, a, c)[1:]
    ),
    "odd_byte_count": lambda tid, u, fc, a, c: mbap(
        tid, u, bytes([fc, 2 * c + 1]) + payload(fc, a, c)[1:] + b"\x00"
    ),
    "wrong_function": lambda tid, u, fc, a, c: mbap(tid, u, bytes([fc + 1]) + payload(fc, a, c)),
    "exception_of_other_function": lambda tid, u, fc, a, c: mbap(tid, u, bytes([(fc + 1) | 0x80, 2])),
    "wrong_transaction": lambda tid, u, fc, a, c: _ok(tid + 1, u, fc, a, c),
    "wrong_unit": lambda tid, u, fc, a, c: _ok(tid, u + 1, fc, a, c),
    "truncated": lambda tid, u, fc, a, c: _ok(tid, u, fc, a, c)[:-3],
    "bad_protocol_id": lambda tid, u, fc, a, c: mbap(tid, u, bytes([fc]) + payload(fc, a, c), protocol=7),
    "unknown_function": lambda tid, u, fc, a, c: mbap(tid, u, bytes([0x41]) + payload(fc, a, c)),
    "garbage": lambda tid, u, fc, a, c: b"\xff" * 12,
    "silent": lambda tid, u, fc, a, c: None,
}
RTU_MODES: dict[str, Answer] = {
    "ok": lambda tid, u, fc, a, c: rtu(u, bytes([fc]) + payload(fc, a, c)),
    "bad_crc": lambda tid, u, fc, a, c: rtu(u, bytes([fc]) + payload(fc, a, c), good_crc=False),
    "short_count": lambda tid, u, fc, a, c: rtu(u, bytes([fc]) + payload(fc, a, c, -1)),
    "wrong_function": lambda tid, u, fc, a, c: rtu(u, bytes([fc + 1]) + payload(fc, a, c)),
    "wrong_unit": lambda tid, u, fc, a, c: rtu(u + 1, bytes([fc]) + payload(fc, a, c)),
    "silent": lambda tid, u, fc, a, c: None,
}


class RawModbusServer:
    """Answers FC1-FC4 reads on loopback TCP; `mode` may change at any time. `close_after_answer`
    closes each connection right after its first answer (a device that resets mid-stream)."""

    def __init__(self, framing: str = "tcp", mode: str = "ok") -> None:
        self.framing = framing
        self.mode = mode
        self.close_after_answer = False
        self.requests = 0
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for writer in list(self._writers):
            writer.close()
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)
        self._server = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            while True:
                if self.framing == "tcp":
                    tid, _, length, unit = struct.unpack(">HHHB", await reader.readexactly(7))
                    pdu = await reader.readexactly(length - 1)
                    answer = TCP_MODES[self.mode]
                else:
                    frame = await reader.readexactly(8)  # unit, fc, address, count, crc
                    tid, unit, pdu = 0, frame[0], frame[1:6]
                    answer = RTU_MODES[self.mode]
                fc, address, count = struct.unpack(">BHH", pdu[:5])
                self.requests += 1
                data = answer(tid, unit, fc, address, count)
                if data is not None:
                    writer.write(data)
                    await writer.drain()
                    if self.close_after_answer:
                        break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self._writers.discard(writer)
            writer.close()
