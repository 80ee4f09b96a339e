"""The consuming side: subscribe to the UNS and Sparkplug namespaces and decode messages back to values.

For the tests and, later, the hub role. UNS JSON decodes message by message; Sparkplug needs the
births to map aliases back to names, which `SparkplugDecoder` remembers per edge node.
"""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from types import TracebackType
from typing import Literal

from google.protobuf.message import DecodeError

from exporters.mqtt import uns
from exporters.mqtt.client import Connection, RawMessage, connect
from exporters.mqtt.settings import MqttSettings
from exporters.mqtt.sparkplug import payloads as spb
from models.status import BAD, GOOD, UNCERTAIN

Family = Literal["uns", "kpi", "sparkplug"]
_FROM_QUALITY = {spb.QUALITY_GOOD: GOOD, spb.QUALITY_STALE: UNCERTAIN, spb.QUALITY_BAD: BAD}


@dataclass(frozen=True, slots=True)
class Decoded:
    """One value taken out of a message.

    `path`: for UNS the topic below the prefix (`<park>/<company>/…/<signal>`); for Sparkplug
    `<group>/<edge node>[/<device>]/<metric name>`. Times are POSIX seconds.
    """

    family: Family
    topic: str
    path: str
    value: object
    status: int | None
    source_time: float | None
    server_time: float | None
    msg_id: str | None = None
    message_type: str | None = None  # Sparkplug NBIRTH, DDATA, …, STATE
    seq: int | None = None  # Sparkplug seq


def decode_uns(topic: str, data: bytes, prefix: str) -> Decoded:
    """A UNS JSON message (signal or KPI) → Decoded; ValueError when it is not one."""
    payload = uns.decode(data)
    path = topic[len(prefix) + 1 :] if topic.startswith(prefix + "/") else topic
    value: object = payload.get("value")
    if payload.get("encoding") == "base64" and isinstance(value, str):
        value = base64.b64decode(value)
    msg_id = payload.get("msg_id")
    msg_id = msg_id if isinstance(msg_id, str) else None
    if "kpi" in payload:  # KPI payloads carry their name; signal payloads never do
        when = payload.get("time")
        at = uns.parse_iso(when) if isinstance(when, str) else None
        return Decoded("kpi", topic, path, value, None, at, at, msg_id)
    status = payload.get("status")
    source, server = payload.get("source_time"), payload.get("server_time")
    return Decoded(
        "uns",
        topic,
        path,
        value,
        status if isinstance(status, int) else None,
        uns.parse_iso(source) if isinstance(source, str) else None,
        uns.parse_iso(server) if isinstance(server, str) else None,
        msg_id,
    )


class SparkplugDecoder:
    """Decodes Sparkplug B messages, resolving DATA aliases through the births seen before."""

    def __init__(self) -> None:
        self._names: dict[tuple[str, str, int], str] = {}  # (group, edge node, alias) → metric name

    def decode(self, topic: str, data: bytes) -> list[Decoded]:
        """Every metric of one message (STATE: one entry, value = online); [] for other topics."""
        levels = topic.split("/")
        if len(levels) < 3 or levels[0] != spb.NAMESPACE:
            return []
        if levels[1] == "STATE":
            state = json.loads(data)
            stamp = state.get("timestamp")
            at = stamp / 1000.0 if isinstance(stamp, int | float) else None
            return [
                Decoded(
                    "sparkplug", topic, "/".join(levels[1:]), state.get("online"), None, at, at, None, "STATE"
                )
            ]
        if len(levels) < 4:
            return []
        group, message_type, edge = levels[1], levels[2], levels[3]
        device = levels[4] if len(levels) > 4 else None
        payload = spb.decode(data)
        base = f"{group}/{edge}" + (f"/{device}" if device else "")
        sent = payload.timestamp / 1000.0 if payload.HasField("timestamp") else None
        seq = payload.seq if payload.HasField("seq") else None
        out = []
        for metric in payload.metrics:
            key = (group, edge, metric.alias)
            if metric.name:
                if metric.HasField("alias"):
                    self._names[key] = metric.name
                name = metric.name
            else:
                name = self._names.get(key, f"alias:{metric.alias}")
            props = spb.properties(metric)
            status = props.get("StatusCode")
            if not isinstance(status, int):
                quality = props.get("Quality")
                status = _FROM_QUALITY.get(quality, BAD) if isinstance(quality, int) else GOOD
            when = metric.timestamp / 1000.0 if metric.HasField("timestamp") else sent
            out.append(
                Decoded(
                    "sparkplug",
                    topic,
                    f"{base}/{name}",
                    spb.metric_value(metric),
                    status,
                    when,
                    sent,
                    None,
                    message_type,
                    seq,
                )
            )
        return out


class MqttSubscriber:
    """`async with MqttSubscriber(settings) as sub:` subscribes to `<prefix>/#` and `spBv1.0/#` at QoS 1."""

    def __init__(
        self,
        settings: MqttSettings,
        *,
        topics: Sequence[str] | None = None,
        client_id: str | None = None,
        clean_start: bool = True,
    ) -> None:
        self.settings = settings
        self.topics = (
            list(topics) if topics is not None else [f"{settings.topic_prefix}/#", f"{spb.NAMESPACE}/#"]
        )
        self.client_id = client_id or f"parklink-sub-{secrets.token_hex(4)}"
        self.clean_start = clean_start  # False + a fixed client_id: the broker queues for us while away
        self.sparkplug = SparkplugDecoder()
        self._context: AbstractAsyncContextManager[Connection] | None = None
        self._conn: Connection | None = None

    async def __aenter__(self) -> MqttSubscriber:
        self._context = connect(self.settings, client_id=self.client_id, clean_start=self.clean_start)
        self._conn = await self._context.__aenter__()
        await self._conn.subscribe([(t, 1) for t in self.topics])
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._context is not None:
            await self._context.__aexit__(exc_type, exc, tb)
        self._context = self._conn = None

    async def next(self) -> RawMessage:
        """The next message (ConnectionLost when the session ends)."""
        if self._conn is None:
            raise RuntimeError("use `async with MqttSubscriber(...)` first")
        return await self._conn.receive()

    async def collect(self, until: Callable[[list[RawMessage]], bool], within: float) -> list[RawMessage]:
        """Messages received until `until(messages)` holds or `within` seconds pass."""
        got: list[RawMessage] = []
        try:
            async with asyncio.timeout(within):
                while not until(got):
                    got.append(await self.next())
        except TimeoutError:
            pass
        return got

    def decode(self, message: RawMessage) -> list[Decoded]:
        """Decode one message of either family; [] for topics of neither (or undecodable payloads)."""
        try:
            if message.topic.startswith(spb.NAMESPACE + "/"):
                return self.sparkplug.decode(message.topic, message.payload)
            return [decode_uns(message.topic, message.payload, self.settings.topic_prefix)]
        except (ValueError, DecodeError):
            return []
