"""Settings of the MQTT exporter: broker connection, topic layout, payload families, store-and-forward.

Validated once, at load, like every parklink config model: unknown keys are an error, secrets are
`SecretStr` (never printed), ranges are checked. Nothing here does I/O.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal, Self

from pydantic import Field, SecretStr, StringConstraints, model_validator

from models.assets import Strict

# A topic level must not hold the MQTT wildcards or the level separator; Sparkplug ids the same.
TopicLevel = Annotated[str, StringConstraints(pattern=r"^[^/+#\s]+$", max_length=128)]
PayloadFamily = Literal["uns_json", "sparkplug"]
_PREFIX = re.compile(r"^[^/+#\s]+(/[^/+#\s]+)*$")


class TlsSettings(Strict):
    """TLS to the broker; present means on."""

    ca_file: Path | None = Field(None, description="CA bundle (PEM) to verify the broker; None: system CAs")
    cert_file: Path | None = Field(None, description="client certificate (PEM) for mutual TLS")
    key_file: Path | None = Field(None, description="private key (PEM) of the client certificate")
    insecure: bool = Field(
        False, description="skip the broker host name check (test brokers only; the chain is still verified)"
    )

    @model_validator(mode="after")
    def _pair(self) -> Self:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("cert_file and key_file go together (mutual TLS needs both)")
        return self


class StoreSettings(Strict):
    """The on-disk queue every UNS message passes through (at-least-once across broker outages)."""

    path: Path = Field(
        Path("parklink-mqtt-queue.sqlite"),
        description="SQLite file of the queue (WAL mode); ':memory:' keeps it in memory (lost on exit)",
    )
    max_messages: int = Field(1_000_000, gt=0, description="pending messages kept; beyond, the oldest drop")
    max_bytes: int = Field(
        512 * 1024 * 1024, gt=0, description="payload bytes kept; beyond, the oldest messages drop"
    )
    max_age: float = Field(
        7 * 24 * 3600.0, gt=0, description="seconds a message may wait for the broker before it drops"
    )


class BackoffSettings(Strict):
    """Capped exponential reconnect backoff with full jitter."""

    initial: float = Field(0.5, gt=0, description="first delay, seconds")
    cap: float = Field(30.0, gt=0, description="longest delay, seconds")


class SparkplugSettings(Strict):
    """The Sparkplug B 3.0 edge node this process presents (one per process and broker)."""

    group_id: TopicLevel | None = Field(None, description="Sparkplug group id; None: the park id")
    edge_node_id: TopicLevel = Field(
        "parklink", description="Sparkplug edge node id, unique within the group (e.g. the factory)"
    )
    primary_host_id: TopicLevel | None = Field(
        None,
        description="host id of the primary host application: births wait for its STATE "
        "'online' and are re-sent each time it comes online; None: publish without waiting",
    )
    bdseq_file: Path | None = Field(
        None, description="file keeping the birth/death sequence number across restarts; None: in memory"
    )
    publish_interval: float = Field(
        0.1, gt=0, le=60, description="seconds between DDATA flushes (changes are batched per device)"
    )


class MqttSettings(Strict):
    """Where and how parklink publishes to MQTT."""

    host: str = Field("127.0.0.1", min_length=1, description="broker host name or address")
    port: int = Field(1883, ge=1, le=65535, description="broker port (8883 is usual with TLS)")
    protocol: Literal["3.1.1", "5"] = Field("3.1.1", description="MQTT protocol version")
    tls: TlsSettings | None = Field(None, description="TLS settings; None: plain TCP")
    username: str | None = Field(None, description="user name; None: anonymous")
    password: SecretStr | None = Field(None, description="password of `username`")
    client_id: TopicLevel | None = Field(
        None,
        description="MQTT client id of the UNS connection (Sparkplug uses '<client_id>-spb'); "
        "None: generated per process",
    )
    clean_start: bool = Field(
        True, description="MQTT 3.1.1 clean session / MQTT 5 clean start of the UNS connection"
    )
    qos: Literal[0, 1, 2] = Field(1, description="QoS of UNS JSON messages (Sparkplug fixes its own)")
    retain: bool = Field(True, description="retain UNS JSON messages so late subscribers get the latest")
    keepalive: int = Field(30, ge=5, le=3600, description="MQTT keepalive, seconds")
    topic_prefix: str = Field(
        "parklink", description="first topic level(s) of every UNS topic, e.g. 'parklink' or 'uns/v1'"
    )
    payloads: list[PayloadFamily] = Field(
        default_factory=lambda: list[PayloadFamily](["uns_json"]),
        min_length=1,
        description="payload families published: 'uns_json' (ISA-95 topics, JSON) and/or 'sparkplug'",
    )
    flush_interval: float = Field(
        0.1, gt=0, le=10, description="seconds between moves of buffered messages to the on-disk queue"
    )
    inflight: int = Field(
        100, ge=1, le=65535, description="QoS 1/2 messages awaiting their acknowledgement at a time"
    )
    store: StoreSettings = Field(default_factory=StoreSettings)
    reconnect: BackoffSettings = Field(default_factory=BackoffSettings)
    sparkplug: SparkplugSettings = Field(default_factory=SparkplugSettings)

    @model_validator(mode="after")
    def _check(self) -> Self:
        if not _PREFIX.match(self.topic_prefix):
            raise ValueError(
                f"topic_prefix {self.topic_prefix!r}: levels separated by '/', "
                "no '+', '#', spaces, empty levels or leading/trailing '/'"
            )
        if self.topic_prefix.split("/")[0] == "spBv1.0":
            raise ValueError("topic_prefix must not start with 'spBv1.0' (the Sparkplug namespace)")
        if not self.clean_start and self.client_id is None:
            raise ValueError("clean_start: false needs a fixed client_id (the broker keys the session by it)")
        if self.password is not None and self.username is None:
            raise ValueError("password without username")
        if len(set(self.payloads)) != len(self.payloads):
            raise ValueError(f"payloads listed twice: {self.payloads}")
        return self
