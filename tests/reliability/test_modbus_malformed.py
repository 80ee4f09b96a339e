"""Modbus TCP answers from a device that gets them wrong, generated with hypothesis (10,000 cases).

A raw asyncio server on loopback answers every read of the real `ModbusConnector` correctly, except
one request per case, which gets a generated answer: the control (a valid frame, with the model's
values or random ones), a wrong function code, an exception code (0-255), an exception of another
function, a byte count that lies, too many or too few values, an MBAP length field too short or too
long, a wrong transaction id, a wrong unit id, a wrong protocol id, a truncated frame, no answer, a
closed connection, an unknown function code, an exception without its code, random bytes, a random
PDU under a correct header.

The connector is driven one poll at a time (`_poll`, and on a lost link what `run` does: `_link_lost`
then `_connect`) over one TCP connection that lives as long as the link does, so 10,000 cases take
well under a minute. Each case is one poll with the faulty answer and one poll with only valid
answers. Properties:

- nothing but a lost link leaves a poll, and no exception leaves the harness;
- the fault stays as small as README's fault table says: an answer that is there but unusable
  spoils that request (its exact status), no usable answer within the timeout spoils that unit
  (the request and the unit's later requests of the poll), a link that pymodbus closes spoils the
  connection (one all-Bad batch, a reconnect counted once the device answers again);
- every Good sample carries exactly the value the frame encodes (decoded here with `struct`,
  independently of parklink's codec); a valid answer gives Good values;
- the next poll, with valid answers only, is all Good with the right values: the link recovered.

Frames that pymodbus discards (wrong transaction id, unit id or protocol id, truncated, too long)
are answered by nothing until the timeout; the harness ends that wait as pymodbus' own timeout
does (a TimeoutError on the pending response), 2 ms after the faulty bytes went out, instead of
sleeping through a real timeout 2,000 times. The connection's own timeout (2 s) only guards
against a harness mistake.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import struct
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, note, settings
from hypothesis import strategies as st
from pymodbus.pdu import DecodePDU

from connectors.base import BoundSignal, LinkHealth
from connectors.modbus.config import validate_binding
from connectors.modbus.connector import ModbusConnector, _LinkDown, create
from models.sample import Sample
from models.status import (
    BAD_DECODING_ERROR,
    BAD_DEVICE_FAILURE,
    BAD_NO_COMMUNICATION,
    BAD_NOT_FOUND,
    BAD_NOT_SUPPORTED,
    BAD_OUT_OF_RANGE,
    BAD_RESOURCE_UNAVAILABLE,
    GOOD,
    name_of,
)
from tests.conftest import Recorder
from tests.connectors.modbus.modbus_helpers import connection
from tests.connectors.modbus.raw_server import mbap, payload

CASES = 10_000
WALL_TIME_LIMIT = 150.0  # s; about 40 s on a 2-core machine
EXPIRE_AFTER = 0.002  # s after the faulty bytes went out: the emulated end of pymodbus' timeout

# ---- the device's signals: two units, four requests (FC1, FC3 on unit 1; FC2, FC4 on unit 2) ---------


def _bit(i: int) -> Callable[[bytes], object]:
    return lambda data: bool(data[i // 8] >> (i % 8) & 1)


def _unpack(fmt: str, at: int) -> Callable[[bytes], object]:
    return lambda data: struct.unpack_from(fmt, data, at)[0]


def _cdab_float(data: bytes) -> object:
    return struct.unpack(">f", data[2:4] + data[0:2])[0]


@dataclass(frozen=True)
class Spec:
    """One signal and how its value comes out of its request's data bytes (independently of parklink)."""

    name: str
    unit: int
    data_type: str
    binding: dict[str, Any]
    expected: Callable[[bytes], object]


SPECS: list[Spec] = [
    *[Spec(f"k{i}", 1, "bool", {"table": "coil", "address": i}, _bit(i)) for i in range(10)],
    Spec("a", 1, "uint16", {"address": 10}, _unpack(">H", 0)),
    Spec("b", 1, "int16", {"address": 11}, _unpack(">h", 2)),
    Spec("c", 1, "uint32", {"address": 12}, _unpack(">I", 4)),
    Spec("d", 1, "float32", {"address": 14}, _unpack(">f", 8)),
    *[Spec(f"i{i}", 2, "bool", {"table": "discrete", "address": i}, _bit(i)) for i in range(5)],
    Spec("f", 2, "float32", {"table": "input", "address": 0, "byte_order": "CDAB"}, _cdab_float),
    Spec("g", 2, "uint16", {"table": "input", "address": 2}, _unpack(">H", 4)),
]
# (unit, function code, address, count) of each request, in the order a poll sends them
REQUESTS: list[tuple[int, int, int, int]] = [(1, 1, 0, 10), (1, 3, 10, 6), (2, 2, 0, 5), (2, 4, 0, 3)]


def data_size(fc: int, count: int) -> int:
    """Data bytes of a correct answer."""
    return (count + 7) // 8 if fc in (1, 2) else 2 * count


def model_data(fc: int, address: int, count: int) -> bytes:
    """The data bytes of the device's correct answer (raw_server's register and coil values)."""
    return payload(fc, address, count)[1:]


def bind_specs() -> list[BoundSignal]:
    signals = []
    for n, spec in enumerate(SPECS):
        binding = validate_binding({"unit_id": spec.unit, **spec.binding}, spec.data_type)  # type: ignore[arg-type]
        signals.append(BoundSignal(n, f"u{spec.unit}/{spec.name}", spec.data_type, binding))  # type: ignore[arg-type]
    return signals


# ---- what a fault does, by kind -----------------------------------------------------------------------

# README "Faults and status codes": exception code → status
EXCEPTION_STATUS = {1: BAD_NOT_SUPPORTED, 2: BAD_NOT_FOUND, 3: BAD_OUT_OF_RANGE, 4: BAD_DEVICE_FAILURE}
EXCEPTION_STATUS |= {5: BAD_RESOURCE_UNAVAILABLE, 6: BAD_RESOURCE_UNAVAILABLE, 8: BAD_DEVICE_FAILURE}
EXCEPTION_STATUS |= {10: BAD_NO_COMMUNICATION, 11: BAD_NO_COMMUNICATION}
# Function codes of public Modbus answers pymodbus 3.16 decodes (others: it cannot use the frame)
DECODABLE_FUNCTIONS = {1, 2, 3, 4, 5, 6, 7, 8, 11, 12, 15, 16, 17, 20, 21, 22, 23, 24, 43}
UNKNOWN_FUNCTIONS = sorted(set(range(0x81)) - DECODABLE_FUNCTIONS)

VALUE, REQUEST, UNIT, LINK, ANY = "value", "request", "unit", "link", "any"
# kind → (weight among the cases, fault size it must have)
KINDS: dict[str, tuple[int, str]] = {
    "valid": (4, VALUE),
    "valid_random": (6, VALUE),
    "wrong_function": (6, REQUEST),
    "exception": (8, REQUEST),
    "other_exception": (4, REQUEST),
    "byte_count_lies": (6, REQUEST),
    "wrong_count": (8, REQUEST),  # too many, too few, an odd number of register bytes
    "length_short": (4, REQUEST),  # MBAP length field shorter than the frame
    "wrong_tid": (2, UNIT),
    "wrong_unit": (2, UNIT),
    "bad_protocol": (1, UNIT),
    "truncated": (2, UNIT),
    "length_long": (1, UNIT),  # MBAP length field longer than the frame
    "silent": (1, UNIT),
    "close": (1, LINK),
    "unknown_function": (1, LINK),
    "exception_no_code": (1, LINK),
    "garbage": (3, ANY),
    "garbage_pdu": (4, ANY),
}
WEIGHTED_KINDS = [kind for kind, (weight, _) in KINDS.items() for _ in range(weight)]
EXPIRING = {kind for kind, (_, size) in KINDS.items() if size in (UNIT, LINK, ANY)}


@dataclass(frozen=True)
class Case:
    """The answer to request `target`: built when the request arrives (it needs the transaction id)."""

    kind: str
    target: int
    number: int = 0  # the kind's parameter: a code, a length, a cut, an id
    blob: bytes = b""  # the kind's bytes: data, a body, garbage

    def frame(self, tid: int, unit: int, fc: int, address: int, count: int) -> bytes | None:
        """The bytes the device sends, or None for no answer."""
        size = data_size(fc, count)
        good_pdu = bytes([fc, size]) + model_data(fc, address, count)
        kind, n, blob = self.kind, self.number, self.blob
        if kind == "valid":
            return mbap(tid, unit, good_pdu)
        if kind == "valid_random":
            return mbap(tid, unit, bytes([fc, size]) + blob)
        if kind == "wrong_function":
            return mbap(tid, unit, bytes([n]) + blob)
        if kind == "exception":
            return mbap(tid, unit, bytes([fc | 0x80, n]))
        if kind == "other_exception":
            return mbap(tid, unit, bytes([n | 0x80]) + blob)
        if kind == "byte_count_lies":
            return mbap(tid, unit, bytes([fc, n]) + model_data(fc, address, count))
        if kind == "wrong_count":
            return mbap(tid, unit, bytes([fc, len(blob)]) + blob)
        if kind == "length_short":
            frame = mbap(tid, unit, good_pdu)
            return frame[:4] + struct.pack(">H", n) + frame[6:]
        if kind == "length_long":
            frame = mbap(tid, unit, good_pdu)
            return frame[:4] + struct.pack(">H", len(good_pdu) + 1 + n) + frame[6:]
        if kind == "wrong_tid":
            return mbap(n if n != tid else n % 65535 + 1, unit, good_pdu)
        if kind == "wrong_unit":
            return mbap(tid, n if n != unit else (n + 1) % 256, good_pdu)
        if kind == "bad_protocol":
            return mbap(tid, unit, good_pdu, protocol=n)
        if kind == "truncated":
            return mbap(tid, unit, good_pdu)[:n]
        if kind == "unknown_function":
            return mbap(tid, unit, bytes([n]) + blob)
        if kind == "exception_no_code":
            return mbap(tid, unit, bytes([fc | 0x80]))
        if kind == "garbage":
            return blob
        if kind == "garbage_pdu":
            return mbap(tid, unit, blob)
        return None  # silent, close


@st.composite
def cases(draw: st.DrawFn) -> Case:
    target = draw(st.integers(0, len(REQUESTS) - 1))
    kind = draw(st.sampled_from(WEIGHTED_KINDS))
    _, fc, _, count = REQUESTS[target]
    size = data_size(fc, count)
    number, blob = 0, b""
    if kind == "valid_random":
        blob = draw(st.binary(min_size=size, max_size=size))
    elif kind == "wrong_function":
        number = draw(st.sampled_from([g for g in (1, 2, 3, 4, 5, 6, 15, 16) if g != fc]))
        # a body the other function's decoder takes: any for reads (strict classes), 4 bytes for writes
        blob = draw(st.binary(max_size=40) if number <= 4 else st.binary(min_size=4, max_size=4))
    elif kind == "exception":
        number = draw(st.integers(0, 255))
    elif kind == "other_exception":
        number = draw(st.integers(1, 127).filter(lambda g: g != fc))
        blob = draw(st.binary(min_size=1, max_size=1))
    elif kind == "byte_count_lies":
        number = draw(st.integers(0, 255).filter(lambda b: b != size))
    elif kind == "wrong_count":
        blob = draw(st.binary(max_size=120).filter(lambda b: len(b) != size))
    elif kind == "length_short":
        number = draw(st.integers(3, size + 2))  # the right length is size + 3 (unit, fc, count, data)
    elif kind == "length_long":
        number = draw(st.integers(1, 65535 - (size + 3)))
    elif kind == "wrong_tid":
        number = draw(st.integers(1, 65535))  # 0 is not wrong to pymodbus: it takes it as "any"
    elif kind in ("wrong_unit", "bad_protocol"):
        number = draw(st.integers(0, 255) if kind == "wrong_unit" else st.integers(1, 65535))
    elif kind == "truncated":
        number = draw(st.integers(0, size + 8))  # the whole frame is size + 9 bytes
    elif kind == "unknown_function":
        number = draw(st.sampled_from(UNKNOWN_FUNCTIONS))
        blob = draw(st.binary(max_size=20))
    elif kind == "garbage":
        blob = draw(st.binary(min_size=1, max_size=300))
    elif kind == "garbage_pdu":
        blob = draw(st.binary(min_size=1, max_size=250))
    return Case(kind, target, number, blob)


# ---- the device -------------------------------------------------------------------------------------


class FaultyDevice:
    """A Modbus TCP server answering FC1-FC4 reads with raw_server's values, except the armed case."""

    def __init__(self) -> None:
        self.case: Case | None = None
        self.served: bytes | None = None  # what the armed case sent (b"" for nothing), once it did
        self.tid = 0  # transaction id of the armed request
        self.on_fault: Callable[[Case], None] = lambda case: None
        self.requests = 0
        self.port = 0
        self._server: asyncio.Server | None = None
        self._links: set[asyncio.Transport] = set()

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: _DeviceLink(self), "127.0.0.1", 0)
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        for transport in list(self._links):
            transport.abort()
        if self._server is not None:
            self._server.close()
            await asyncio.wait_for(self._server.wait_closed(), 5)

    def arm(self, case: Case | None) -> None:
        self.case, self.served = case, None

    def answer(self, transport: asyncio.Transport, request: bytes) -> None:
        tid, _, _, unit = struct.unpack_from(">HHHB", request)
        fc, address, count = struct.unpack_from(">BHH", request, 7)
        self.requests += 1
        case = self.case
        if case is not None and self.served is None and REQUESTS[case.target] == (unit, fc, address, count):
            frame = case.frame(tid, unit, fc, address, count)
            self.served, self.tid = frame or b"", tid
            if case.kind == "close":
                transport.close()
            elif frame:
                transport.write(frame)
            self.on_fault(case)
            return
        transport.write(mbap(tid, unit, bytes([fc, data_size(fc, count)]) + model_data(fc, address, count)))


class _DeviceLink(asyncio.Protocol):
    def __init__(self, device: FaultyDevice) -> None:
        self.device = device
        self.buffer = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.device._links.add(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.transport is not None:
            self.device._links.discard(self.transport)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while len(self.buffer) >= 7:
            end = 6 + struct.unpack_from(">H", self.buffer, 4)[0]
            if len(self.buffer) < end:
                return
            request, self.buffer = self.buffer[:end], self.buffer[end:]
            assert self.transport is not None
            if not self.transport.is_closing():
                self.device.answer(self.transport, request)


# ---- the harness ------------------------------------------------------------------------------------


@dataclass
class Outcome:
    """What one poll did: its batch, and whether the link was lost (and reconnected) during it."""

    batch: list[Sample]
    link_lost: bool


class Harness:
    """One connector, one device, one TCP connection for as long as the link lives."""

    def __init__(self, device: FaultyDevice) -> None:
        self.device = device
        self.health = LinkHealth("plc", "modbus", "acme")
        self.signals = bind_specs()
        conn = connection(device.port, timeout=2.0, reconnect_initial=1.0, reconnect_max=2.0)
        self.connector: ModbusConnector = create(conn, self.signals, self.health)
        plan = [(r.unit_id, r.function_code, r.address, r.count) for r in self.connector.plan.requests]
        assert plan == REQUESTS, plan  # the layout this test is written for
        (self.group,) = self.connector.groups
        self.by_request = [[key for key, _ in r.items] for r in self.connector.plan.requests]
        device.on_fault = self._fault_sent

    @classmethod
    async def start(cls) -> Harness:
        device = FaultyDevice()
        await device.start()
        return cls(device)

    async def stop(self) -> None:
        self.connector._close()
        await self.device.stop()

    def _fault_sent(self, case: Case) -> None:
        """For answers pymodbus will not take: end the request's wait as its timeout would."""
        client = self.connector._client
        if case.kind not in EXPIRING or client is None:
            return
        pending = client.ctx.response_future  # the request being answered right now

        def expire() -> None:
            if not pending.done():
                pending.set_exception(TimeoutError())

        asyncio.get_running_loop().call_later(EXPIRE_AFTER, expire)

    async def poll(self) -> Outcome:
        """One poll as `run` makes it; on a lost link, its Bad batch and a new connection."""
        c = self.connector
        client = c._client
        if client is None or not client.connected:
            assert await c._connect(), self.health.last_error
        try:
            async with asyncio.timeout(5):
                return Outcome(await c._poll(self.group), False)
        except _LinkDown as exc:
            lost: list[Sample] = []
            c._link_lost(lambda batch: lost.extend(batch), str(exc))
            assert await c._connect(), self.health.last_error
            return Outcome(lost, True)

    def rest_over(self) -> None:
        """End the rest of a silent unit now (it rests 1 s here): the next poll asks it again."""
        for unit in self.connector._units.values():
            unit.retry_at = 0.0

    async def check(self, case: Case) -> int:
        """Apply one case; assert the properties; return the values lost (0, or an assertion fails)."""
        h = self.health
        if not h.up:  # the first case, or a failed one left the link down
            await self.poll()
        self.rest_over()
        errors, reconnects = h.read_errors, h.reconnects
        self.device.arm(case)
        first = await self.poll()
        assert self.device.served is not None, "the faulty request was not sent"
        data = self._sent_data(case, REQUESTS[case.target])
        lost = self._judge(case, first, data)
        size = self._size(first, case.target)
        if size in (REQUEST, UNIT):
            assert h.up and h.reconnects == reconnects and h.read_errors == errors + 1, (size, h)
        elif size == VALUE:
            assert h.up and h.read_errors == errors, h
        self.device.arm(None)  # every answer valid again
        self.rest_over()
        second = await self.poll()
        assert not second.link_lost, f"not recovered: {self.health.last_error}"
        lost += self._values(second.batch, {}, case)
        assert all(s.status == GOOD for s in second.batch), "the next poll is not all Good"
        assert h.up and h.reconnects == reconnects + (size == LINK), h
        return lost

    def _sent_data(self, case: Case, request: tuple[int, int, int, int]) -> bytes | None:
        """The data bytes the faulty answer carries if it is a well-formed answer to its request."""
        _, fc, address, count = request
        size = data_size(fc, count)
        if case.kind == "valid":
            return model_data(fc, address, count)
        if case.kind == "valid_random":
            return case.blob
        if case.kind == "garbage_pdu":
            pdu = case.blob
            if len(pdu) == size + 2 and pdu[0] == fc and pdu[1] == size:
                return pdu[2:]
        return None

    def _size(self, outcome: Outcome, target: int) -> str:
        """The fault size a poll's batch shows (VALUE, REQUEST, UNIT or LINK)."""
        if outcome.link_lost:
            return LINK
        bad = [i for i, keys in enumerate(self.by_request) if outcome.batch[keys[0]].status != GOOD]
        if not bad:
            return VALUE
        if self.connector.silent_units:
            return UNIT
        assert bad == [target], (bad, target)
        return REQUEST

    def _judge(self, case: Case, outcome: Outcome, data: bytes | None) -> int:
        """Assert the first poll's fault size and statuses; returns the values lost."""
        batch, target = outcome.batch, case.target
        unit, fc, _, _ = REQUESTS[target]
        assert sorted(s.signal for s in batch) == list(range(len(SPECS))), "a signal is missing or repeated"
        batch.sort(key=lambda s: s.signal)
        outcome.batch = batch
        size = self._size(outcome, target)
        expected = KINDS[case.kind][1]
        if case.kind == "garbage_pdu":
            expected = VALUE if data is not None else ANY
            if data is None and len(case.blob) >= 2 and case.blob[0] == fc | 0x80:
                expected = REQUEST
        if expected == ANY:
            assert size in (REQUEST, UNIT, LINK) or self._embedded(case, size, batch), size
        else:
            assert size == expected, f"{case.kind}: fault size {size}, expected {expected}"
        statuses = {batch[k].status for k in self.by_request[target]}
        if size == LINK:
            assert {s.status for s in batch} == {BAD_NO_COMMUNICATION}
            return 0
        if size == UNIT:
            later = [i for i, r in enumerate(REQUESTS) if i >= target and r[0] == unit]
            keys = {k for i in later for k in self.by_request[i]}
            assert self.connector.silent_units == [unit]
            assert {batch[k].status for k in keys} == {BAD_NO_COMMUNICATION}
            return self._values(batch, {}, case, skip=keys)
        if size == REQUEST:
            (status,) = statuses
            want = self._request_status(case, fc)
            assert want is None or status == want, f"{case.kind}: {name_of(status)}, expected {name_of(want)}"
            assert all(batch[k].value is None for k in self.by_request[target])
            return self._values(batch, {}, case, skip=set(self.by_request[target]))
        if data is None:  # random bytes holding a well-formed answer: _embedded checked every value
            assert case.kind == "garbage"
            return 0
        return self._values(batch, {target: data}, case)

    def _request_status(self, case: Case, fc: int) -> int | None:
        if case.kind == "exception":
            return EXCEPTION_STATUS.get(case.number, BAD_DEVICE_FAILURE)
        if case.kind == "garbage_pdu" and len(case.blob) >= 2 and case.blob[0] == fc | 0x80:
            return EXCEPTION_STATUS.get(case.blob[1], BAD_DEVICE_FAILURE)
        if case.kind in ("garbage", "garbage_pdu"):
            return None  # whatever pymodbus made of it, as long as it is Bad
        return BAD_DECODING_ERROR

    def _embedded(self, case: Case, size: str, batch: list[Sample]) -> bool:
        """Random bytes that hold a well-formed answer (found anywhere in them) may give Good values."""
        if size != VALUE:
            return False
        unit, fc, _, count = REQUESTS[case.target]
        want = bytes([unit, fc, data_size(fc, count)])
        blob, n = case.blob, data_size(fc, count)
        for at in range(len(blob) - 9 - n + 1):
            header, body = blob[at : at + 7], blob[at + 6 : at + 9]
            tid, protocol, length, _ = struct.unpack(">HHHB", header)
            if tid in (0, self.device.tid) and protocol == 0 and length == n + 3 and body == want:
                data = blob[at + 9 : at + 9 + n]
                if self._values(batch, {case.target: data}, case) == 0:
                    return True
        return False

    def _values(
        self, batch: list[Sample], sent: dict[int, bytes], case: Case, skip: set[int] | None = None
    ) -> int:
        """Good samples whose value is not what their answer encodes (model values unless in `sent`)."""
        wrong = 0
        for target, keys in enumerate(self.by_request):
            _, fc, address, count = REQUESTS[target]
            data = sent.get(target, model_data(fc, address, count))
            for key in keys:
                sample = next(s for s in batch if s.signal == key)
                if skip and key in skip:
                    continue
                if sample.status != GOOD:
                    wrong += 1
                    continue
                if not _same(sample.value, SPECS[key].expected(data)):
                    wrong += 1
        return wrong


def _same(got: object, want: object) -> bool:
    if isinstance(got, float) and isinstance(want, float) and math.isnan(got):
        return math.isnan(want)
    return type(got) is type(want) and got == want


@contextlib.contextmanager
def quiet_logs() -> Iterator[None]:
    """Only errors of parklink, none of asyncio, for the run: the connector logs each distinct failure
    of a request once, which with random answers is nearly every case, and formatting 10,000 log
    lines costs a fifth of the run. (asyncio logs pymodbus' exception in data_received, its way of
    giving up on a frame it cannot decode.)"""
    levels = {name: logging.getLogger(name).level for name in ("parklink", "asyncio")}
    logging.getLogger("parklink").setLevel(logging.ERROR)
    logging.getLogger("asyncio").setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)


def test_decodable_function_codes_are_what_the_cases_assume() -> None:
    """UNKNOWN_FUNCTIONS is built on the function codes pymodbus 3.16 decodes."""
    import pymodbus.client  # noqa: F401  # registers every PDU class

    assert set(DecodePDU(False).pdu_table) == DECODABLE_FUNCTIONS


@pytest.mark.timeout(WALL_TIME_LIMIT + 60)
def test_malformed_answers_never_crash_and_stay_small(record: Recorder) -> None:
    """10,000 generated answers (see the module doc): each fault as small as specified, no wrong
    value, no crash, and the next poll all Good."""
    stats: Counter[str] = Counter()
    tried: Counter[str] = Counter()  # by kind
    survived: Counter[str] = Counter()
    started = time.monotonic()
    with asyncio.Runner() as runner:
        harness = runner.run(Harness.start())

        @settings(
            max_examples=CASES,
            derandomize=True,
            database=None,
            deadline=None,
            phases=[Phase.explicit, Phase.generate, Phase.shrink],
            suppress_health_check=list(HealthCheck),
            report_multiple_bugs=False,
        )
        @given(case=cases())
        def one_case(case: Case) -> None:
            note(repr(case))
            stats["tried"] += 1
            tried[case.kind] += 1
            stats["lost"] += runner.run(harness.check(case))
            stats["survived"] += 1
            survived[case.kind] += 1

        try:
            with quiet_logs():
                one_case()
        finally:
            runner.run(harness.stop())
            elapsed = time.monotonic() - started
            record(
                "modbus malformed answers (hypothesis)",
                stats["tried"],
                stats["survived"],
                stats["lost"],
                f"{len(KINDS)} kinds, {elapsed:.0f} s; lost = Good values that differ from the frame",
            )
            garbage = ("garbage", "garbage_pdu")
            record(
                "modbus device answers garbage (part of the row above)",
                sum(tried[k] for k in garbage),
                sum(survived[k] for k in garbage),
                0,
                "random bytes; random PDU under a right header",
            )
    kinds = {kind: survived[kind] for kind in KINDS}
    assert stats["tried"] >= CASES and all(kinds.values()), kinds
    assert stats["lost"] == 0
    assert elapsed < WALL_TIME_LIMIT, f"{elapsed:.0f} s"
    assert harness.device.requests >= 2 * len(REQUESTS) * CASES * 0.8
