"""The one module that knows the MQTT library (aiomqtt on paho-mqtt 2.x); the rest sees `Connection`.

Why aiomqtt: it is paho-mqtt (the Eclipse reference client: MQTT 3.1.1 and 5, TLS, wills,
in-flight window) driven by the asyncio loop instead of a network thread, so publishes are
awaitable until their PUBACK and connection loss surfaces as an exception in our own tasks. A
library rename or API change touches this file only.

A `Connection` is one MQTT session: `connect()` opens it, leaving the `async with` closes it with
a DISCONNECT (so the broker drops the will). There is no reconnect in here: callers loop with
backoff and open a fresh `Connection` (a fresh paho client, so nothing paho queued for the dead
session is replayed behind the caller's back).
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
from collections.abc import AsyncIterator, Coroutine, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, NamedTuple

import aiomqtt
import paho.mqtt.client as paho

from exporters.mqtt.settings import MqttSettings

log = logging.getLogger("parklink.mqtt.client")


class ConnectionLost(Exception):
    """The broker could not be reached, refused us, or the session broke."""


class RawMessage(NamedTuple):
    """A message as received: topic, payload bytes, QoS, retain flag."""

    topic: str
    payload: bytes
    qos: int
    retain: bool


@dataclass(frozen=True, slots=True)
class Will:
    """The message the broker publishes for us when the session dies without a DISCONNECT."""

    topic: str
    payload: bytes
    qos: int = 1
    retain: bool = False


class Connection:
    """An open MQTT session."""

    def __init__(self, client: aiomqtt.Client, ack_timeout: float) -> None:
        self._client = client
        self._ack_timeout = ack_timeout
        # aiomqtt's iterator object, not a generator: a cancelled wait does not close it.
        self._incoming = client.messages

    async def publish(self, topic: str, payload: bytes, qos: int = 0, retain: bool = False) -> None:
        """Publish one message; at QoS 1/2 return after the broker acknowledged it."""
        try:
            await self._client.publish(topic, payload, qos, retain, timeout=self._ack_timeout)
        except aiomqtt.MqttError as exc:
            raise ConnectionLost(str(exc)) from exc

    def publish_ordered(self, messages: Sequence[tuple[str, bytes, int, bool]]) -> list[asyncio.Task[None]]:
        """Start publishing in order, pipelined up to the in-flight window: one task per message.

        paho writes the PUBLISH packets in the order of these calls and the broker forwards them in
        order, so many messages can await their PUBACK at once without losing the order. Await the
        tasks in order: those done without error, from the first, were acknowledged.
        """
        return [
            asyncio.ensure_future(self.publish(topic, payload, qos, retain))
            for topic, payload, qos, retain in messages
        ]

    async def subscribe(self, topics: Sequence[tuple[str, int]]) -> None:
        """Subscribe to (filter, QoS) pairs and wait for the SUBACK."""
        try:
            await self._client.subscribe(list(topics), timeout=self._ack_timeout)
        except aiomqtt.MqttError as exc:
            raise ConnectionLost(str(exc)) from exc

    async def receive(self) -> RawMessage:
        """The next incoming message; ConnectionLost when the session ends. Safe to cancel (timeouts)."""
        try:
            message = await anext(self._incoming)
        except aiomqtt.MqttError as exc:
            raise ConnectionLost(str(exc)) from exc
        payload = message.payload
        if not isinstance(payload, bytes):  # aiomqtt types it loosely; paho delivers bytes
            payload = str(payload).encode()
        return RawMessage(message.topic.value, payload, message.qos, bool(message.retain))

    async def messages(self) -> AsyncIterator[RawMessage]:
        """Incoming messages until the session ends (then ConnectionLost, even with no subscription)."""
        while True:
            yield await self.receive()


def _tls(settings: MqttSettings) -> tuple[aiomqtt.TLSParameters | None, bool | None]:
    tls = settings.tls
    if tls is None:
        return None, None
    params = aiomqtt.TLSParameters(
        ca_certs=str(tls.ca_file) if tls.ca_file else None,
        certfile=str(tls.cert_file) if tls.cert_file else None,
        keyfile=str(tls.key_file) if tls.key_file else None,
        cert_reqs=ssl.CERT_REQUIRED,
        tls_version=ssl.PROTOCOL_TLS_CLIENT,
    )
    return params, tls.insecure


@asynccontextmanager
async def connect(
    settings: MqttSettings,
    *,
    client_id: str,
    will: Will | None = None,
    clean_start: bool = True,
    connect_timeout: float = 10.0,
) -> AsyncIterator[Connection]:
    """Open one MQTT session with the broker of `settings`; ConnectionLost when that fails."""
    v5 = settings.protocol == "5"
    tls_params, tls_insecure = _tls(settings)
    client = aiomqtt.Client(
        settings.host,
        settings.port,
        username=settings.username,
        password=settings.password.get_secret_value() if settings.password else None,
        identifier=client_id,
        protocol=aiomqtt.ProtocolVersion.V5 if v5 else aiomqtt.ProtocolVersion.V311,
        will=aiomqtt.Will(will.topic, will.payload, will.qos, will.retain) if will else None,
        # MQTT 5 carries the flag as "clean start" in CONNECT, 3.1.1 as "clean session".
        clean_session=None if v5 else clean_start,
        clean_start=clean_start if v5 else paho.MQTT_CLEAN_START_FIRST_ONLY,
        keepalive=settings.keepalive,
        timeout=connect_timeout,
        max_inflight_messages=settings.inflight,
        tls_params=tls_params,
        tls_insecure=tls_insecure,
        # paho writes one small packet per PUBLISH; Nagle would hold them back waiting for ACKs.
        socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)],
        logger=logging.getLogger("parklink.mqtt.paho"),  # paho logs each socket error itself
    )
    # aiomqtt warns above 10 pending calls; a full in-flight window is our normal state.
    client.pending_calls_threshold = settings.inflight + 16
    try:
        await client.__aenter__()
    except aiomqtt.MqttError as exc:
        raise ConnectionLost(f"{settings.host}:{settings.port}: {exc}") from exc
    try:
        # An ack that takes longer than a few keepalives means a dead link paho has not noticed yet.
        yield Connection(client, ack_timeout=max(connect_timeout, 2.0 * settings.keepalive))
    finally:
        try:
            await asyncio.wait_for(client.__aexit__(None, None, None), timeout=connect_timeout)
        except (aiomqtt.MqttError, TimeoutError, OSError) as exc:
            log.debug("disconnect from %s:%s failed: %s", settings.host, settings.port, exc)


async def first_to_end(*coroutines: Coroutine[Any, Any, None]) -> None:
    """Run the tasks of one session side by side until one ends; cancel the others, re-raise its error.

    The receive loop is what notices a lost session (paho reports it there), so it must be able to
    stop a sender that is blocked awaiting acknowledgements.
    """
    tasks = [asyncio.ensure_future(c) for c in coroutines]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    for task in done:
        error = None if task.cancelled() else task.exception()
        if error is not None:
            raise error
