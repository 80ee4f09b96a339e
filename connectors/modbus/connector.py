"""The Modbus TCP connector: runs the read plan every poll interval, decodes, pushes one batch.

Fault model (each fault stays as small as it is):
- a Modbus exception response spoils only the signals of that request;
- a short or malformed response spoils that request's signals (BadDecodingError), never decoded;
- a value that does not decode spoils only its own signal;
- a timeout or a lost connection marks every signal BadNoCommunication, closes the client and
  reconnects with capped exponential backoff; nothing but cancellation leaves `run`.
pymodbus stays inside this module (and the simulator): the rest of parklink sees Samples, status
codes and LinkHealth.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Sequence

from pymodbus.client import AsyncModbusTcpClient
from pymodbus.exceptions import ConnectionException, ModbusException, ModbusIOException
from pymodbus.pdu import ModbusPDU

from connectors.base import BoundSignal, LinkHealth, SampleSink
from connectors.common.backoff import Backoff
from connectors.modbus import codec
from connectors.modbus.config import BIT_TABLES, ModbusBinding, ModbusConnection
from connectors.modbus.planner import Item, Limits, Plan, Request, describe, plan_requests
from models.sample import Sample, Value, bad, good
from models.status import (
    BAD_COMMUNICATION_ERROR,
    BAD_DECODING_ERROR,
    BAD_DEVICE_FAILURE,
    BAD_INTERNAL_ERROR,
    BAD_NO_COMMUNICATION,
    BAD_NOT_FOUND,
    BAD_NOT_SUPPORTED,
    BAD_NOT_WRITABLE,
    BAD_OUT_OF_RANGE,
    BAD_RESOURCE_UNAVAILABLE,
    BAD_TIMEOUT,
    BAD_TYPE_MISMATCH,
    GOOD,
    name_of,
)

log = logging.getLogger("parklink.modbus")

# Modbus exception codes (Modbus Application Protocol V1.1b3 §7) → OPC UA status codes.
EXCEPTION_STATUS: dict[int, int] = {
    1: BAD_NOT_SUPPORTED,  # illegal function
    2: BAD_NOT_FOUND,  # illegal data address: the register does not exist
    3: BAD_OUT_OF_RANGE,  # illegal data value
    4: BAD_DEVICE_FAILURE,  # server device failure
    5: BAD_RESOURCE_UNAVAILABLE,  # acknowledge: busy with a long command
    6: BAD_RESOURCE_UNAVAILABLE,  # server device busy
    8: BAD_DEVICE_FAILURE,  # memory parity error
    10: BAD_NO_COMMUNICATION,  # gateway path unavailable
    11: BAD_NO_COMMUNICATION,  # gateway target device failed to respond
}
# Errors that mean the link itself is gone or unusable: reconnect.
_LINK_ERRORS = (ModbusIOException, ConnectionException, OSError, TimeoutError)


def quiet_pymodbus() -> None:
    """pymodbus logs every failure at ERROR with frame dumps; we report through LinkHealth instead."""
    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)


def status_of_exception(code: int) -> int:
    """The OPC UA status for a Modbus exception code."""
    return EXCEPTION_STATUS.get(code, BAD_DEVICE_FAILURE)


class _LinkDown(Exception):
    """The connection failed in the middle of a poll."""


class ModbusConnector:
    """Polls one Modbus TCP connection; implements `Connector` and `WritableConnector`."""

    def __init__(self, conn: ModbusConnection, signals: Sequence[BoundSignal], health: LinkHealth) -> None:
        self.conn = conn
        self.health = health
        self.signals: tuple[BoundSignal, ...] = tuple(signals)
        self.bindings: tuple[ModbusBinding, ...] = tuple(s.binding for s in self.signals)
        self.overruns = 0  # polls that took longer than poll_interval (the missed slots are skipped)
        self.polls = 0
        self.requests_sent = 0
        self.plan = self._make_plan()
        self._client: AsyncModbusTcpClient | None = None
        self._lock = asyncio.Lock()  # one request in flight: polls and writes share the client
        self._backoff = Backoff(conn.reconnect_initial, conn.reconnect_max)
        self._logged: dict[int, str] = {}  # request index → failure last logged, to log each once
        self._down_emitted = False
        for key, reason in self.plan.rejected:
            log.error("%s: %s is never read: %s", health.connection, self.signals[key].path, reason)

    def _make_plan(self) -> Plan:
        items, rejected = [], []
        for key, b in enumerate(self.bindings):
            address = b.address - self.conn.addressing
            if address < 0:
                rejected.append((key, "address 0 does not exist with 1-based addressing"))
            else:
                items.append(Item(key, b.unit_id, b.table, address, b.words))
        conn = self.conn
        limits = Limits(conn.max_registers_per_request, conn.max_bits_per_request, conn.max_gap)
        plan = plan_requests(items, limits)
        return Plan(plan.requests, plan.rejected + tuple(rejected))

    def explain(self) -> str:
        """The read plan, one line per request, with the signal paths each carries."""
        names = {k: s.path for k, s in enumerate(self.signals)}
        counts = {k: b.words for k, b in enumerate(self.bindings)}
        return describe(self.plan, names, counts, self.conn.addressing)

    async def run(self, sink: SampleSink) -> None:
        """Connect, poll into `sink` every poll_interval, reconnect on loss; until cancelled."""
        try:
            while True:
                try:
                    if await self._connect():
                        await self._poll_until_down(sink)
                    elif not self._down_emitted:
                        self._emit(sink, self._all_bad(BAD_NO_COMMUNICATION))
                        self._down_emitted = True
                except Exception:  # a bug must not end the connection for good: log, start over
                    log.exception("%s: poll loop failed; reconnecting", self.health.connection)
                    self._close()
                    self.health.mark_down("internal error, see log")
                await asyncio.sleep(self._backoff.next_delay())
        finally:
            self._close()

    async def _connect(self) -> bool:
        self._close()
        client = _open_client(self.conn)
        try:
            async with asyncio.timeout(self.conn.timeout + 1.0):  # pymodbus bounds it too; belt and braces
                ok = await client.connect()
        except Exception as exc:  # pymodbus returns False, but a resolver or socket error may still raise
            ok, reason = False, f"connect failed: {exc!r}"
        else:
            reason = f"cannot connect to {self.conn.host}:{self.conn.port}"
        if not ok:
            client.close()
            self.health.mark_down(reason)
            return False
        # The link counts as up only once the device answers (see _poll): a gateway that accepts
        # TCP connections but never answers must not flap between up and down.
        self._client = client
        return True

    def _close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            client.close()

    async def _poll_until_down(self, sink: SampleSink) -> None:
        loop = asyncio.get_running_loop()
        interval = self.conn.poll_interval
        next_at = loop.time()
        while True:
            try:
                batch = await self._poll()
            except _LinkDown as exc:
                self._close()
                self.health.mark_down(str(exc))
                if not self._down_emitted:  # one Bad batch per outage, not one per failed attempt
                    self._emit(sink, self._all_bad(BAD_NO_COMMUNICATION))
                    self._down_emitted = True
                return
            self._emit(sink, batch)
            next_at += interval
            now = loop.time()
            if now > next_at:  # overran: skip the missed slots rather than polling back-to-back
                self.overruns += 1
                next_at += math.ceil((now - next_at) / interval) * interval
            await asyncio.sleep(next_at - now)

    async def _poll(self) -> list[Sample]:
        """One poll: every request of the plan, in order; returns the batch."""
        batch: list[Sample] = []
        rtts: list[float] = []
        for index, req in enumerate(self.plan.requests):
            if index and self.conn.pause_between_requests:
                await asyncio.sleep(self.conn.pause_between_requests)
            started = time.perf_counter()
            try:
                response = await self._read(req)
            except _LinkDown:
                raise
            except ModbusException as exc:  # a malformed or unexpected frame, on a link that still works
                self._request_failed(index, req, batch, BAD_COMMUNICATION_ERROR, repr(exc))
                continue
            except Exception as exc:  # a bug or a library surprise must not end the poll loop
                self._request_failed(index, req, batch, BAD_INTERNAL_ERROR, repr(exc), exc_info=True)
                continue
            rtts.append(time.perf_counter() - started)
            self._decode(index, req, response, batch)
        now = time.time()
        batch.extend(bad(self.signals[key].signal, BAD_NOT_SUPPORTED, now) for key, _ in self.plan.rejected)
        self.polls += 1
        if rtts or not self.plan.requests:  # the device answered (even with exceptions): link is up
            self.health.mark_up()
            self._backoff.reset()
            self._down_emitted = False
        if rtts:
            self.health.last_rtt = sum(rtts) / len(rtts)
        return batch

    async def _read(self, req: Request) -> ModbusPDU:
        client = self._client
        # Bound each request even if the library hangs: its own timeout times its attempts, plus slack.
        limit = self.conn.timeout * (self.conn.retries + 1) + 1.0
        try:
            async with self._lock:
                if client is None or not client.connected:
                    raise _LinkDown("connection closed by the device")
                self.requests_sent += 1
                read = {
                    "holding": client.read_holding_registers,
                    "input": client.read_input_registers,
                    "coil": client.read_coils,
                    "discrete": client.read_discrete_inputs,
                }[req.table]
                async with asyncio.timeout(limit):
                    return await read(req.address, count=req.count, device_id=req.unit_id)
        except _LINK_ERRORS as exc:
            raise _LinkDown(f"request {_label(req)}: {_link_reason(exc, self.conn.timeout)}") from exc

    def _decode(self, index: int, req: Request, response: ModbusPDU, batch: list[Sample]) -> None:
        now = time.time()
        if response.isError():
            code = response.exception_code
            self._request_failed(index, req, batch, status_of_exception(code), f"exception code {code}")
            return
        is_bits = req.table in BIT_TABLES
        got = len(response.bits) if is_bits else len(response.registers)
        # Bits arrive padded to whole bytes, registers must match exactly; never decode a short frame.
        if got < req.count or (not is_bits and got != req.count):
            self._request_failed(index, req, batch, BAD_DECODING_ERROR, f"{got} values for {req.count} asked")
            return
        if self._logged.pop(index, None) is not None:
            log.info("%s: request %s readable again", self.health.connection, _label(req))
        bits, registers = response.bits, response.registers
        for key, offset in req.items:
            signal, b = self.signals[key], self.bindings[key]
            try:
                if is_bits:
                    value: Value = bool(bits[offset])
                else:
                    value = codec.decode(
                        registers[offset : offset + b.words],
                        signal.data_type,
                        b.byte_order,
                        bit=b.bit,
                        scale=b.scale,
                        offset=b.offset,
                    )
            except Exception as exc:  # e.g. invalid UTF-8: this signal only
                log.debug("%s: cannot decode %s: %s", self.health.connection, signal.path, exc)
                batch.append(bad(signal.signal, BAD_DECODING_ERROR, now))
                continue
            batch.append(good(signal.signal, value, now))

    def _request_failed(
        self, index: int, req: Request, batch: list[Sample], status: int, reason: str, exc_info: bool = False
    ) -> None:
        self.health.read_errors += 1
        if self._logged.get(index) != reason:  # once per request and distinct failure, not every poll
            self._logged[index] = reason
            what = f"{self.health.connection}: request {_label(req)} failed ({name_of(status)})"
            log.warning("%s: %s", what, reason, exc_info=exc_info)
        now = time.time()
        batch.extend(bad(self.signals[key].signal, status, now) for key, _ in req.items)

    def _all_bad(self, status: int) -> list[Sample]:
        now = time.time()
        return [bad(s.signal, status, now) for s in self.signals]

    def _emit(self, sink: SampleSink, batch: list[Sample]) -> None:
        if not batch:
            return
        self.health.samples += len(batch)
        try:
            sink(batch)
        except Exception:  # the sink's failure is not the device's: keep polling
            log.exception("%s: sample sink failed", self.health.connection)

    async def write(self, signal: BoundSignal, value: object) -> int:
        """Write one value (coil: FC5, one register: FC6, several: FC16); returns a status code."""
        b: ModbusBinding = signal.binding
        if not b.writable:
            return BAD_NOT_WRITABLE
        try:
            words = codec.encode(
                value, signal.data_type, b.byte_order, count=b.count, scale=b.scale, offset=b.offset
            )
        except TypeError:
            return BAD_TYPE_MISMATCH
        except ValueError:
            return BAD_OUT_OF_RANGE
        address = b.address - self.conn.addressing
        try:
            async with self._lock:
                client = self._client
                if client is None or not client.connected:
                    return BAD_NO_COMMUNICATION
                async with asyncio.timeout(self.conn.timeout * (self.conn.retries + 1) + 1.0):
                    if b.table == "coil":
                        rr = await client.write_coil(address, bool(words[0]), device_id=b.unit_id)
                    elif len(words) == 1:
                        rr = await client.write_register(address, words[0], device_id=b.unit_id)
                    else:
                        rr = await client.write_registers(address, words, device_id=b.unit_id)
        except _LINK_ERRORS as exc:
            log.warning("%s: write to %s failed: %s", self.health.connection, signal.path, exc)
            return BAD_TIMEOUT if isinstance(exc, ModbusIOException | TimeoutError) else BAD_NO_COMMUNICATION
        except ModbusException as exc:
            log.warning("%s: write to %s failed: %s", self.health.connection, signal.path, exc)
            return BAD_COMMUNICATION_ERROR
        except Exception:  # a caller (API, script) gets a status code, never a library exception
            log.exception("%s: write to %s failed", self.health.connection, signal.path)
            return BAD_INTERNAL_ERROR
        status = status_of_exception(rr.exception_code) if rr.isError() else GOOD
        log.info("%s: write %s = %r: %s", self.health.connection, signal.path, value, name_of(status))
        return status


def _open_client(conn: ModbusConnection) -> AsyncModbusTcpClient:
    # reconnect_delay=0: pymodbus must not reconnect behind our back; run() owns reconnects.
    return AsyncModbusTcpClient(
        conn.host, port=conn.port, timeout=conn.timeout, retries=conn.retries, reconnect_delay=0
    )


def _link_reason(exc: BaseException, timeout: float) -> str:
    if isinstance(exc, TimeoutError) or (isinstance(exc, ModbusIOException) and "No response" in str(exc)):
        return f"no response within {timeout:g} s"
    if isinstance(exc, ModbusException):
        return exc.string
    return f"{type(exc).__name__}: {exc}"


def _label(req: Request) -> str:
    return f"unit {req.unit_id} {req.table} {req.address}+{req.count}"


def create(conn: ModbusConnection, signals: Sequence[BoundSignal], health: LinkHealth) -> ModbusConnector:
    """The factory registered in `KIND`."""
    quiet_pymodbus()
    return ModbusConnector(conn, signals, health)
