"""The Modbus connector: polls each poll group on its own schedule over one shared link, decodes,
pushes one batch per group poll; writes on the same link.

Fault model (each fault stays as small as it is; see `faults.py`):
- a Modbus exception, or a malformed or mismatched response, spoils only that request's signals;
- a value that does not decode spoils only its own signal;
- a unit that does not answer within the timeout spoils that unit's signals: it rests for a backoff
  delay (its signals reported BadNoCommunication, no request sent) so a dead device on a serial bus
  or behind a gateway costs one timeout per rest, not one per request; the other units go on;
- a link that is lost, or on which no unit answers, marks every signal BadNoCommunication once,
  closes the client and reconnects with capped exponential backoff.
Nothing but cancellation leaves `run`, and cancellation always does, even when Python 3.11's
wait_for inside pymodbus swallows it (checked after every poll). pymodbus stays inside this
package (`transport.py`).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from pymodbus.pdu import ModbusPDU

from connectors.base import BoundSignal, LinkHealth, SampleSink
from connectors.common.backoff import Backoff
from connectors.modbus import codec
from connectors.modbus.binding import ModbusBinding
from connectors.modbus.config import ModbusConnection
from connectors.modbus.decoding import Decoder
from connectors.modbus.faults import (
    EXCEPTION_STATUS,
    check_response,
    classify,
    describe_exception,
    quiet_pymodbus,
    reason_of,
    status_of_exception,
)
from connectors.modbus.planner import Request
from connectors.modbus.schedule import PollGroup, build_schedule, explain
from connectors.modbus.transport import Client, open_client, raise_if_cancelled, read, request_gap, write_call
from models.sample import Sample, bad
from models.status import (
    BAD_COMMUNICATION_ERROR,
    BAD_INTERNAL_ERROR,
    BAD_NO_COMMUNICATION,
    BAD_NOT_SUPPORTED,
    BAD_NOT_WRITABLE,
    BAD_OUT_OF_RANGE,
    BAD_TIMEOUT,
    BAD_TYPE_MISMATCH,
    GOOD,
    name_of,
)

log = logging.getLogger("parklink.modbus")
_A = TypeVar("_A")

__all__ = ["EXCEPTION_STATUS", "ModbusConnector", "create", "quiet_pymodbus", "status_of_exception"]


class _LinkDown(Exception):
    """The link is gone, or no unit on it answers: reconnect."""


class _NoAnswer(Exception):
    """One unit did not answer within the timeout."""


class _BadAnswer(Exception):
    """An answer arrived that pymodbus could not use (a protocol error); the link still works."""


@dataclass(slots=True)
class _Unit:
    """A unit id on the link; after a timeout it rests until `retry_at` (monotonic)."""

    backoff: Backoff
    silent_since: float | None = None
    retry_at: float = 0.0


@dataclass(slots=True)
class _Outage:
    emitted: bool = False  # the Bad batch of the current outage has been sent
    logged: dict[int, str] = field(default_factory=dict)  # request index → failure last logged


class ModbusConnector:
    """Polls one Modbus connection; implements `Connector` and `WritableConnector`."""

    def __init__(self, conn: ModbusConnection, signals: Sequence[BoundSignal], health: LinkHealth) -> None:
        self.conn = conn
        self.health = health
        self.signals: tuple[BoundSignal, ...] = tuple(signals)
        self.bindings: tuple[ModbusBinding, ...] = tuple(s.binding for s in self.signals)
        self.overruns = 0  # polls that took longer than their interval (the missed slots are skipped)
        self.polls = 0
        self.requests_sent = 0
        self.schedule = build_schedule(conn, self.signals)
        self.plan = self.schedule.plan
        self.groups: tuple[PollGroup, ...] = self.schedule.groups
        self._decoder = Decoder(self.signals, self.plan.requests, health.connection)
        self._units = {r.unit_id: self._new_unit() for r in self.plan.requests}
        self._client: Client | None = None
        self._lock = asyncio.Lock()  # one request in flight: every group and every write share the link
        self._gap = request_gap(conn)
        self._next_send = 0.0  # loop time before which the next request must not start
        self._rtt = math.nan  # seconds, of the last exchange
        # what one request may take at most: pymodbus' attempts, the pause before it, and slack
        self._request_limit = conn.timeout * (conn.retries + 1) + self._gap + 0.5
        self._backoff = Backoff(conn.reconnect_initial, conn.reconnect_max)
        self._state = _Outage()
        for key, reason in self.plan.rejected:
            log.error("%s: %s is never read: %s", health.connection, self.signals[key].path, reason)

    def _new_unit(self) -> _Unit:
        return _Unit(Backoff(self.conn.reconnect_initial, self.conn.reconnect_max))

    @property
    def silent_units(self) -> list[int]:
        """Unit ids that did not answer their last request (resting before the next try)."""
        return sorted(u for u, state in self._units.items() if state.silent_since is not None)

    def explain(self) -> str:
        """The read schedule, one line per request, with the signal paths each carries."""
        return explain(self.conn, self.schedule, self.signals)

    # ---- connection life cycle -------------------------------------------------------------

    async def run(self, sink: SampleSink) -> None:
        """Connect, poll into `sink` on every group's schedule, reconnect on loss; until cancelled."""
        try:
            while True:
                try:
                    if await self._connect():
                        reason = await self._poll_groups(sink)
                        self._link_lost(sink, reason)
                    else:
                        self._link_lost(sink, "")
                except Exception:  # a bug must not end the connection for good: log, start over
                    log.exception("%s: poll loop failed; reconnecting", self.health.connection)
                    self._close()
                    self.health.mark_down("internal error, see log")
                await asyncio.sleep(self._backoff.next_delay())
        finally:
            self._close()

    async def _connect(self) -> bool:
        self._close()
        client = open_client(self.conn)
        try:
            try:
                async with asyncio.timeout(self.conn.timeout + 1.0):  # pymodbus bounds it too
                    ok = await client.connect()
                raise_if_cancelled()
            except Exception as exc:  # pymodbus returns False, but a resolver error may still raise
                ok, reason = False, f"connect failed: {exc!r}"
            else:
                reason = f"cannot connect to {self.conn.endpoint}"
            if ok and self.conn.pause_after_connect:
                await asyncio.sleep(self.conn.pause_after_connect)
        except BaseException:  # cancelled: leave no open socket or serial port behind
            client.close()
            raise
        if not ok:
            client.close()
            self.health.mark_down(reason)
            return False
        # The link counts as up only once a device answers (see _poll): a gateway that accepts TCP
        # connections but never answers must not flap between up and down.
        self._client = client
        self._units = {u: self._new_unit() for u in self._units}
        return True

    def _close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            client.close()

    def _link_lost(self, sink: SampleSink, reason: str) -> None:
        self._close()
        if reason:
            self.health.mark_down(reason)
        if not self._state.emitted:  # one Bad batch per outage, not one per failed attempt
            now = time.time()
            self._emit(sink, [bad(s.signal, BAD_NO_COMMUNICATION, now) for s in self.signals])
            self._state.emitted = True

    async def _poll_groups(self, sink: SampleSink) -> str:
        """Run every group's poll loop until the link fails; returns why."""
        tasks = [asyncio.create_task(self._group_loop(g, sink), name=f"modbus-{g.name}") for g in self.groups]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        for task in done:
            exc = task.exception()
            if isinstance(exc, _LinkDown):
                return str(exc)
            if exc is not None:
                raise exc
        return "poll loop ended"  # not reached: group loops only end by raising

    async def _group_loop(self, group: PollGroup, sink: SampleSink) -> None:
        loop = asyncio.get_running_loop()
        # pymodbus bounds every attempt; this bounds a whole poll in case the library ever hangs. A
        # request may wait for one request of every other group (and a write) before its turn.
        limit = len(group.requests) * (len(self.groups) + 1) * self._request_limit + 1.0
        next_at = loop.time()
        while True:
            try:
                async with asyncio.timeout(limit):
                    batch = await self._poll(group)
            except TimeoutError:
                raise _LinkDown(f"poll of group {group.name} not done after {limit:g} s") from None
            raise_if_cancelled()  # a cancel that pymodbus' wait_for swallowed during the poll
            self._emit(sink, batch)
            next_at += group.interval
            now = loop.time()
            if now > next_at:  # overran: skip the missed slots rather than polling back-to-back
                self.overruns += 1
                group.overruns += 1
                next_at += math.ceil((now - next_at) / group.interval) * group.interval
            await asyncio.sleep(next_at - now)

    # ---- one poll --------------------------------------------------------------------------

    async def _poll(self, group: PollGroup) -> list[Sample]:
        """One poll of a group: its requests in order, skipping resting units; returns the batch."""
        batch: list[Sample] = []
        rtts: list[float] = []
        for index in group.requests:
            req = self.plan.requests[index]
            unit = self._units[req.unit_id]
            if unit.silent_since is not None and time.monotonic() < unit.retry_at:
                self._decoder.fill(req, batch, BAD_NO_COMMUNICATION)
                continue
            self.requests_sent += 1
            try:
                response = await self._exchange(read, req, req)
            except _NoAnswer as exc:
                self.health.read_errors += 1
                self._decoder.fill(req, batch, BAD_NO_COMMUNICATION)
                self._unit_silent(req.unit_id, str(exc))
                continue
            except _BadAnswer as exc:
                self._request_failed(index, req, batch, BAD_COMMUNICATION_ERROR, str(exc))
                continue
            except _LinkDown:
                raise
            except Exception as exc:  # a bug or a library surprise must not end the poll loop
                self._request_failed(index, req, batch, BAD_INTERNAL_ERROR, repr(exc), exc_info=True)
                continue
            rtts.append(self._rtt)
            if unit.silent_since is not None:
                self._unit_answered(req.unit_id)
            self._decode(index, req, response, batch)
        if group.rejected:
            now = time.time()
            batch.extend(bad(self.signals[key].signal, BAD_NOT_SUPPORTED, now) for key in group.rejected)
        self.polls += 1
        group.polls += 1
        if rtts or not self.plan.requests:  # a device answered (even with exceptions): link is up
            self.health.mark_up()
            self._backoff.reset()
            self._state.emitted = False
        if rtts:
            self.health.last_rtt = sum(rtts) / len(rtts)
        return batch

    async def _exchange(
        self, call: Callable[[Client, _A], Awaitable[ModbusPDU]], arg: _A, what: Request | str
    ) -> ModbusPDU:
        """`call(client, arg)` on the shared client: serialised, paced, bounded, its failure classified."""
        loop = asyncio.get_running_loop()
        client: Client | None = None
        try:
            async with self._lock:
                client = self._client
                if client is None or not client.connected:
                    raise _LinkDown("connection closed")
                wait = self._next_send - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                started = time.perf_counter()
                try:
                    response = await call(client, arg)  # bounded by pymodbus (timeout × attempts)
                finally:
                    self._next_send = loop.time() + self._gap
                self._rtt = time.perf_counter() - started  # the exchange alone, without waiting to send
                return response
        except _LinkDown:
            raise
        except Exception as exc:
            kind = classify(exc, client is not None and client.connected)
            label = what.label if isinstance(what, Request) else what
            reason = f"{label}: {reason_of(exc, self.conn.timeout)}"
            if kind == "link":
                raise _LinkDown(reason) from exc
            if kind == "timeout":
                raise _NoAnswer(reason) from exc
            if kind == "protocol":
                raise _BadAnswer(reason) from exc
            raise

    def _unit_silent(self, unit_id: int, reason: str) -> None:
        unit = self._units[unit_id]
        now = time.monotonic()
        first = unit.silent_since is None
        if first:
            unit.silent_since = now
        unit.retry_at = now + unit.backoff.next_delay()
        if all(u.silent_since is not None for u in self._units.values()):
            raise _LinkDown(reason if len(self._units) == 1 else f"no unit answers; last: {reason}")
        if first:
            log.warning("%s: unit %d does not answer: %s", self.health.connection, unit_id, reason)

    def _unit_answered(self, unit_id: int) -> None:
        unit = self._units[unit_id]
        if unit.silent_since is not None:
            log.warning("%s: unit %d answers again", self.health.connection, unit_id)
            unit.silent_since = None
            unit.backoff.reset()

    def _decode(self, index: int, req: Request, response: ModbusPDU, batch: list[Sample]) -> None:
        problem = check_response(req, response)
        if problem is not None:
            self._request_failed(index, req, batch, *problem)
            return
        if self._state.logged and self._state.logged.pop(index, None) is not None:
            log.info("%s: request %s readable again", self.health.connection, req.label)
        self._decoder.decode(index, req, response, batch)

    def _request_failed(
        self, index: int, req: Request, batch: list[Sample], status: int, reason: str, exc_info: bool = False
    ) -> None:
        self.health.read_errors += 1
        if self._state.logged.get(index) != reason:  # once per request and distinct failure, not every poll
            self._state.logged[index] = reason
            what = f"{self.health.connection}: request {req.label} failed ({name_of(status)})"
            log.warning("%s: %s", what, reason, exc_info=exc_info)
        self._decoder.fill(req, batch, status)

    def _emit(self, sink: SampleSink, batch: list[Sample]) -> None:
        if not batch:
            return
        self.health.samples += len(batch)
        try:
            sink(batch)
        except Exception:  # the sink's failure is not the device's: keep polling
            log.exception("%s: sample sink failed", self.health.connection)

    # ---- writes ----------------------------------------------------------------------------

    async def write(self, signal: BoundSignal, value: object) -> int:
        """Write one value (coil: FC5, one register: FC6, several: FC16); returns a status code."""
        b: ModbusBinding = signal.binding
        if not b.writable:
            return BAD_NOT_WRITABLE
        if b.value_map is not None and isinstance(value, str):
            raw = [k for k, name in b.value_map.items() if name == value]
            if not raw:
                return BAD_OUT_OF_RANGE  # not a state this signal knows
            value = raw[0]
        try:
            words = codec.encode(
                value, signal.data_type, b.byte_order, count=b.count, scale=b.scale, offset=b.offset
            )
        except TypeError:
            return BAD_TYPE_MISMATCH
        except ValueError:
            return BAD_OUT_OF_RANGE
        fc, call = write_call(b.table, b.address - self.conn.addressing, words, b.unit_id)
        try:
            async with asyncio.timeout((len(self.groups) + 1) * self._request_limit + 1.0):
                rr = await self._exchange(call, None, f"write {signal.path}")
        except TimeoutError:
            log.warning("%s: write %s: no result in time", self.health.connection, signal.path)
            return BAD_TIMEOUT
        except (_LinkDown, _NoAnswer, _BadAnswer) as exc:
            log.warning("%s: %s failed: %s", self.health.connection, f"write {signal.path}", exc)
            return {_LinkDown: BAD_NO_COMMUNICATION, _NoAnswer: BAD_TIMEOUT}.get(
                type(exc), BAD_COMMUNICATION_ERROR
            )
        except Exception:  # a caller (API, script) gets a status code, never a library exception
            log.exception("%s: write to %s failed", self.health.connection, signal.path)
            return BAD_INTERNAL_ERROR
        if rr.isError():
            status = status_of_exception(rr.exception_code)
            outcome = describe_exception(rr.exception_code)
        elif rr.function_code != fc:
            status, outcome = BAD_COMMUNICATION_ERROR, f"answer of function {rr.function_code}"
        else:
            status, outcome = GOOD, "done"
        log.info(
            "%s: write %s = %r: %s (%s)", self.health.connection, signal.path, value, name_of(status), outcome
        )
        return status


def create(conn: ModbusConnection, signals: Sequence[BoundSignal], health: LinkHealth) -> ModbusConnector:
    """The factory registered in `KIND`."""
    quiet_pymodbus()
    return ModbusConnector(conn, signals, health)
