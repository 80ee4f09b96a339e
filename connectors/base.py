"""The one small interface of a connector kind, and what the framework hands each connector.

A connector kind is registered as a `ConnectorKind`: its connection model (pydantic, with a
`kind` literal), a function that validates one signal's binding, and a factory. A connector is
anything with `async run(sink)`: it connects, reconnects with backoff, pushes batches of Samples
to the sink, and closes every connection when cancelled.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from pydantic import BaseModel

from models.assets import DataType
from models.sample import Sample

if TYPE_CHECKING:
    from connectors.common.simulated_machine import SimulatedMachine

log = logging.getLogger("parklink.connection")

SampleSink = Callable[[Sequence[Sample]], None]
"""Receives one batch (a whole poll or a whole publish response); must not block."""


@dataclass(frozen=True, slots=True)
class BoundSignal:
    """One signal of one asset bound to an address on a connection."""

    signal: int  # index into the runtime's signal table; goes into every Sample
    path: str  # company/site/line/asset/signal, for messages
    data_type: DataType
    binding: Any  # the connector kind's validated binding model
    writable: bool = False


@dataclass(slots=True)
class LinkHealth:
    """Health of one connection, in the manner of Neuron's per-node metrics.

    Connectors update it; the Prometheus exporter reads it at scrape time. Transitions are
    logged once (one line when a link fails, one when it recovers), never per sample.
    """

    connection: str
    kind: str
    company: str
    up: bool = False
    samples: int = 0
    read_errors: int = 0
    reconnects: int = 0
    last_rtt: float = math.nan
    last_error: str = ""
    down_since: float | None = None
    _ever_up: bool = field(default=False, repr=False)

    def mark_up(self) -> None:
        if self.up:
            return
        if self._ever_up:
            self.reconnects += 1
            log.warning("%s/%s: connection recovered", self.company, self.connection)
        self.up, self._ever_up, self.down_since, self.last_error = True, True, None, ""

    def mark_down(self, reason: str) -> None:
        first = self.up or self.down_since is None
        self.up = False
        if self.down_since is None:
            self.down_since = time.time()
        if first or reason != self.last_error:
            log.warning("%s/%s: connection failed: %s", self.company, self.connection, reason)
        self.last_error = reason


class Connector(Protocol):
    """A running connection to one device or server."""

    async def run(self, sink: SampleSink) -> None:
        """Connect, stream or poll into `sink`, reconnect on loss; until cancelled, then close."""
        ...


@runtime_checkable
class FiniteConnector(Protocol):
    """Optional ability: a source whose data ends (a recording). `played` is set once every sample
    has been handed to the sink: nothing later will come from it, so what is computed from its
    samples need not wait for late ones any more."""

    played: asyncio.Event


class WritableConnector(Protocol):
    """Optional ability: write a value to one writable signal; returns the device's status code."""

    async def write(self, signal: BoundSignal, value: object) -> int: ...


class Simulator(Protocol):
    """The device side of a connection (for the demo and the tests)."""

    async def start(self) -> None: ...
    async def stop(self) -> None: ...


ConnectorFactory = Callable[[Any, Sequence[BoundSignal], LinkHealth], Connector]
BindingValidator = Callable[[dict[str, Any], DataType], BaseModel]
Explainer = Callable[[Any, Sequence[BoundSignal]], str]
BindingCheck = Callable[[Any, Any], tuple[str, str] | None]
"""(connection settings, validated binding) → (binding key, what is wrong), or None when consistent."""
SimulatorFactory = Callable[[Any, Sequence["SimulatedMachine"]], Simulator]


@dataclass(frozen=True, slots=True)
class ConnectorKind:
    """A protocol, as the registry knows it.

    Optional abilities: `check_binding` checks a binding against its connection at config load (a
    group the connection does not declare, say); `explain` says in plain text what the connector
    will send for these signals (`parklink validate --explain`); `simulate` builds a simulator
    serving the given machines at the connection's address (`parklink demo`).
    """

    name: str
    connection_model: type[BaseModel]
    validate_binding: BindingValidator
    create: ConnectorFactory
    explain: Explainer | None = None
    simulate: SimulatorFactory | None = None
    check_binding: BindingCheck | None = None
