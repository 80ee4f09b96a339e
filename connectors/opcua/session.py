"""One connection attempt to an OPC UA server: its client and session, limits, resolved addresses.

A fresh `Session` per attempt, so a late callback of a dead session cannot disturb the next one.
asyncua runs with `auto_reconnect=False`; the connector notices loss (`signal_loss`) and starts over.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from asyncua import ua
from asyncua.client.client import Client
from asyncua.common.subscription import Subscription
from asyncua.ua.attribute_ids import AttributeIds
from asyncua.ua.object_ids import ObjectIds
from asyncua.ua.uaerrors import UaError, UaStatusCodeError

from connectors.opcua.codec import BAD_NO_MATCH, Address, BrowsePathAddress, make_node_id
from connectors.opcua.config import OpcUaConnection
from connectors.opcua.security import CLIENT_REFUSED, Pki, SecurityError, client_refused, secure
from models import status as st

log = logging.getLogger("parklink.opcua")
# asyncua logs every PublishResult at INFO (formatting it whole): never let that through.
logging.getLogger("asyncua").setLevel(logging.WARNING)

_EXPECTED_NOISE = (
    "close_session was called but connection is closed",
    "close_secure_channel was called but connection is closed",
    "Publish iteration crashed; retrying in 1s",  # its request failed with the socket
)


def _not_expected_noise(record: logging.LogRecord) -> bool:
    """asyncua complains about a connection we already know is dead (and close next): drop that."""
    exc = record.exc_info[1] if record.exc_info else None
    return not (record.msg in _EXPECTED_NOISE and (exc is None or isinstance(exc, ConnectionError)))


for _name in ("asyncua.client.ua_session.UaSession", "asyncua.client.ua_client.UaClient"):
    logging.getLogger(_name).addFilter(_not_expected_noise)

_CLOSE_TIMEOUT = 2.0
_SESSION_TIMEOUT_MS = 120_000  # the server frees our session 2 min after we vanish
CURRENT_TIME = make_node_id(ObjectIds.Server_ServerStatus_CurrentTime)
_LIMITS = (
    ObjectIds.Server_ServerCapabilities_OperationLimits_MaxMonitoredItemsPerCall,
    ObjectIds.Server_ServerCapabilities_OperationLimits_MaxNodesPerRead,
    ObjectIds.Server_ServerCapabilities_OperationLimits_MaxNodesPerTranslateBrowsePathsToNodeIds,
    ObjectIds.Server_ServerCapabilities_OperationLimits_MaxNodesPerBrowse,
)
# What loading structure definitions may fail with (asyncua's parser is not strict about errors).
_LOAD_ERRORS = (TimeoutError, UaStatusCodeError, ValueError, AttributeError, KeyError, ConnectionError)
_HINTS = {
    0x801F0000: "user name or password refused (BadUserAccessDenied)",
    0x80210000: "the server refused the identity (BadIdentityTokenRejected)",
    0x80200000: "the server does not accept this kind of identity (BadIdentityTokenInvalid)",
    0x801A0000: "the server does not trust parklink's client certificate (BadCertificateUntrusted): "
    "trust it on the server",
    0x80130000: "security checks failed (BadSecurityChecksFailed): the server may not trust parklink's "
    "client certificate yet",
}


def status_name(code: int) -> str:
    """The symbolic name of a status code (asyncua knows them all)."""
    name = st.name_of(code)
    if name.startswith("0x"):
        try:
            new: Any = ua.StatusCode
            name = str(new(code).name)
        except Exception:  # an unknown code keeps its hex form
            return name
    return name


def describe(exc: BaseException) -> str:
    """One line for health.last_error and the log: what went wrong, what to do where we know."""
    if isinstance(exc, SecurityError):
        return str(exc)
    if isinstance(exc, UaStatusCodeError):
        code = exc.code if isinstance(exc.code, int) else 0
        return _HINTS.get(code & 0xFFFF0000, status_name(code))
    if isinstance(exc, TimeoutError):
        return "timeout"
    if isinstance(exc, UaError) and str(exc).startswith("No matching endpoints"):
        return "the server offers no endpoint without security: set security_policy and security_mode"
    return str(exc) or type(exc).__name__


async def read(client: Client, node_ids: Sequence[ua.NodeId], attr: int = AttributeIds.Value) -> list[Any]:
    """One Read request asking for both timestamps (asyncua's read_attributes asks for Source only)."""
    params = ua.ReadParameters()
    params.TimestampsToReturn = ua.TimestampsToReturn.Both
    params.NodesToRead = [ua.ReadValueId(NodeId=n, AttributeId=attr) for n in node_ids]
    results: list[Any] = await client.uaclient.read(params)
    return results


async def close(client: Client) -> None:
    """Close the session politely within 2 s; then drop the socket whatever happened."""
    try:
        await asyncio.wait_for(client.disconnect(), _CLOSE_TIMEOUT)
    except Exception:
        log.debug("disconnect failed", exc_info=True)
    finally:
        client.disconnect_socket()


def new_client(conn: OpcUaConnection) -> Client:
    # asyncua's own watchdog allows its probe only min(interval, session timeout / 2): with an
    # interval below `timeout` a server answering within `timeout` would be dropped as dead.
    watchdog = max(conn.watchdog_interval, conn.timeout)
    client = Client(conn.endpoint, timeout=conn.timeout, watchdog_intervall=watchdog)
    client.name = client.description = "parklink"
    client.session_timeout = _SESSION_TIMEOUT_MS
    return client


NotificationsHandler = Callable[[list[Any]], None]


class BatchSubscription(Subscription):
    """A Subscription that hands each publish response's notifications over in one call."""

    def __init__(
        self,
        client: Client,
        params: ua.CreateSubscriptionParameters,
        on_data: NotificationsHandler,
        group: str,
    ):
        super().__init__(client.uaclient.session, params, handler=None, queue_maxsize=1)
        self._on_data = on_data
        self.group = group
        self.last_response_at = time.monotonic()

    async def publish_callback(self, publish_result: ua.PublishResult) -> None:
        """Called by asyncua's publish loop once per PublishResponse; never awaits."""
        self.last_response_at = time.monotonic()
        message = publish_result.NotificationMessage
        if message.NotificationData:
            self.last_sequence_number = message.SequenceNumber
            self._on_data(message.NotificationData)

    async def create_items(
        self, requests: list[ua.MonitoredItemCreateRequest]
    ) -> list[ua.MonitoredItemCreateResult]:
        """CreateMonitoredItems without asyncua's per-item bookkeeping (a Node and a record per item):
        publish_callback never looks items up, and a lost session is rebuilt, never repaired."""
        params = ua.CreateMonitoredItemsParameters(
            SubscriptionId=self.subscription_id,
            ItemsToCreate=requests,
            TimestampsToReturn=ua.TimestampsToReturn.Both,
        )
        results: list[ua.MonitoredItemCreateResult] = await self.server.create_monitored_items(params)
        return results


class Session:
    """One connection attempt: client, session, server limits, resolved node ids, loss flag."""

    def __init__(self, conn: OpcUaConnection, pki: Pki) -> None:
        self.conn, self.pki = conn, pki
        self.client = new_client(conn)
        self.lost = asyncio.Event()
        self.reason = ""
        self.node_ids: list[ua.NodeId | None] = []
        self.variant_types: dict[int, ua.VariantType] = {}
        self.subscriptions: list[BatchSubscription] = []
        self.up = False
        # min(config, server's OperationLimits): items per CreateMonitoredItems, nodes per Read, …
        batch = conn.subscribe_batch_size
        self.items_per_call = self.nodes_per_read = self.paths_per_call = self.nodes_per_browse = batch

    async def open(self, load_types: bool) -> bool:
        """Secure, connect, read the limits, load structure definitions; True if they were loaded."""
        certificate = await secure(self.client, self.conn, self.pki)
        self.client.connection_lost_callback = self.on_connection_lost
        try:
            await self.client.connect(auto_reconnect=False)
        except UaStatusCodeError as exc:
            code = exc.code & 0xFFFF0000 if isinstance(exc.code, int) else 0
            if certificate is not None and code in CLIENT_REFUSED:
                raise client_refused(certificate, code, status_name(code)) from exc
            raise
        await self._read_limits()
        return await self._load_types() if load_types else False

    async def _read_limits(self) -> None:
        """The server's OperationLimits; 0, absent or unreadable means no limit."""
        limits: list[int | None] = []
        try:
            values = await read(self.client, [make_node_id(i) for i in _LIMITS])
        except UaStatusCodeError:  # e.g. a server whose MaxNodesPerRead is below 4: keep the config's
            values = []
        for dv in values:
            value = dv.Value.Value if dv.StatusCode.is_good() and dv.Value is not None else None
            limits.append(value if isinstance(value, int) and value > 0 else None)
        batch = self.conn.subscribe_batch_size
        limits += [None] * (len(_LIMITS) - len(limits))
        items, reads, paths, browse = (batch if limit is None else min(batch, limit) for limit in limits)
        self.items_per_call, self.nodes_per_read, self.paths_per_call, self.nodes_per_browse = (
            items,
            reads,
            paths,
            browse,
        )

    async def _load_types(self) -> bool:
        """Generate classes for the server's structures so they decode; bounded by data_types_timeout."""
        started = time.monotonic()
        try:
            await asyncio.wait_for(self.client.load_data_type_definitions(), self.conn.data_types_timeout)
        except _LOAD_ERRORS as exc:
            log.warning(
                "%s: structure definitions not loaded (%s); values of structures will be Bad "
                "(BadDataTypeIdUnknown)",
                self.conn.endpoint,
                describe(exc),
            )
            return False
        log.debug(
            "%s: structure definitions loaded in %.1f s", self.conn.endpoint, time.monotonic() - started
        )
        return True

    async def resolve(self, addresses: Sequence[Address]) -> dict[int, tuple[int, str]]:
        """NodeIds of every slot: `nsu=` looked up, browse paths translated in batches.

        Returns the slots that failed, with the status and a message.
        """
        failures: dict[int, tuple[int, str]] = {}
        namespaces: list[str] | None = None
        if any(a.namespace_uri is not None for a in addresses):
            namespaces = list(await self.client.get_namespace_array())
        self.node_ids = [None] * len(addresses)
        paths: list[tuple[int, ua.BrowsePath]] = []
        for slot, address in enumerate(addresses):
            try:
                if isinstance(address, BrowsePathAddress):
                    paths.append((slot, address.resolve(namespaces)))
                else:
                    self.node_ids[slot] = address.resolve(namespaces)
            except LookupError as exc:
                failures[slot] = (st.BAD_NODE_ID_UNKNOWN, str(exc))
        for start in range(0, len(paths), self.paths_per_call):
            chunk = paths[start : start + self.paths_per_call]
            try:
                results = await self.client.uaclient.translate_browsepaths_to_nodeids([p for _, p in chunk])
            except UaStatusCodeError as exc:  # the whole call refused
                results = [ua.BrowsePathResult(StatusCode=ua.StatusCode(exc.code))] * len(chunk)
            for (slot, _), result in zip(chunk, results, strict=True):
                target = _local_target(result)
                if target is None:
                    code = result.StatusCode.value if not result.StatusCode.is_good() else BAD_NO_MATCH
                    failures[slot] = (code, "browse path not resolved")
                else:
                    self.node_ids[slot] = target
        return failures

    def chunks(self, slots: Sequence[int], size: int) -> list[list[tuple[int, ua.NodeId]]]:
        """(slot, node id) of the resolved nodes among `slots`, in runs of `size` (one call each)."""
        live = [(slot, node_id) for slot in slots if (node_id := self.node_ids[slot]) is not None]
        return [live[start : start + size] for start in range(0, len(live), size)]

    async def probe(self) -> float:
        """Read the server clock; returns the round trip. Raises if the server is gone."""
        start = time.perf_counter()
        (dv,) = await read(self.client, [CURRENT_TIME])
        rtt = time.perf_counter() - start
        dv.StatusCode.check()
        return rtt

    def signal_loss(self, reason: str) -> None:
        """Record the first reason the session died and wake the supervising loop."""
        if not self.lost.is_set():
            self.reason = reason
            self.lost.set()

    async def on_connection_lost(self, exc: Exception) -> None:
        """asyncua's connection_lost_callback: the socket closed or its watchdog Read failed."""
        self.signal_loss(f"connection lost ({describe(exc)})")


def _local_target(result: ua.BrowsePathResult) -> ua.NodeId | None:
    """The node a translated browse path leads to, if it is on this server."""
    if not result.StatusCode.is_good() or not result.Targets:
        return None
    target = result.Targets[0].TargetId  # an ExpandedNodeId on the wire; asyncua may give a NodeId
    if getattr(target, "NamespaceUri", None) or getattr(target, "ServerIndex", 0):
        return None
    return make_node_id(target.Identifier, target.NamespaceIndex, target.NodeIdType)
