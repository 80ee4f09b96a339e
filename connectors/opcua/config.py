"""Config models of the OPC UA connector: one connection (a server endpoint), its groups, one binding.

Validated once at load, without I/O. Field descriptions become the JSON schema editors show.

Monitored-item settings (sampling interval, queue, filter) cascade: a binding's own value, else its
group's, else the connection's. A group is one Subscription (or one poll loop) of its own.
"""

from __future__ import annotations

from typing import Annotated, Literal
from urllib.parse import urlparse

from pydantic import Field, SecretStr, StringConstraints, field_validator, model_validator

from connectors.opcua.codec import parse_address
from models.assets import Strict

SecurityPolicy = Literal["None", "Basic256Sha256", "Aes128_Sha256_RsaOaep", "Aes256_Sha256_RsaPss"]
SecurityMode = Literal["None", "Sign", "SignAndEncrypt"]
Mode = Literal["subscribe", "poll"]
Trigger = Literal["status", "status_value", "status_value_timestamp"]
DeadbandType = Literal["none", "absolute", "percent"]
GroupName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_-]{0,62}$")]
DEFAULT_GROUP = "default"


def _check_deadband(kind: DeadbandType | None, value: float | None) -> None:
    if kind == "percent" and value is not None and value > 100:
        raise ValueError("a percent deadband_value must be within 0..100 (percent of the node's EURange)")
    if kind in ("absolute", "percent") and value is not None and value <= 0:
        raise ValueError(f"deadband_type {kind} needs a deadband_value > 0")


class _ItemSettings(Strict):
    """Monitored-item settings a group or a binding may override (None: inherit)."""

    sampling_interval: float | None = Field(
        None, ge=0, description="milliseconds between samples on the server (0 = fastest)"
    )
    queue_size: int | None = Field(None, ge=1, description="server-side queue size per monitored item")
    discard_oldest: bool | None = Field(None, description="when the queue is full, drop the oldest value")
    trigger: Trigger | None = Field(
        None, description="data change trigger: status | status_value | status_value_timestamp"
    )
    deadband_type: DeadbandType | None = Field(
        None, description="none | absolute | percent (percent of the node's EURange property)"
    )
    deadband_value: float | None = Field(
        None, ge=0, description="deadband, in the value's unit or in percent"
    )

    @model_validator(mode="after")
    def _deadband(self) -> _ItemSettings:
        _check_deadband(self.deadband_type, self.deadband_value)
        return self


class OpcUaGroup(_ItemSettings):
    """A set of bindings with their own Subscription (or poll loop): its own publishing interval."""

    mode: Mode | None = Field(None, description="subscribe | poll; the connection's mode when not given")
    publishing_interval: float | None = Field(
        None, gt=0, description="milliseconds, this group's Subscription"
    )
    poll_interval: float | None = Field(None, gt=0, description="seconds between Reads, poll mode")


class OpcUaConnection(Strict):
    """One OPC UA server, reached through one session."""

    kind: Literal["opcua"]
    endpoint: str = Field(description="server endpoint URL, e.g. 'opc.tcp://plc1.local:4840/'")
    timeout: float = Field(5.0, gt=0, description="timeout of each request, seconds")
    mode: Mode = Field(
        "subscribe", description="'subscribe': the server reports changes; 'poll': Read every poll_interval"
    )
    publishing_interval: float = Field(
        500.0, gt=0, description="subscription publishing interval, milliseconds"
    )
    sampling_interval: float = Field(
        250.0, ge=0, description="default sampling interval of monitored items, milliseconds (0 = fastest)"
    )
    queue_size: int = Field(1, ge=1, description="server-side queue size per monitored item")
    discard_oldest: bool = Field(True, description="when an item's queue is full, drop the oldest value")
    trigger: Trigger = Field(
        "status_value", description="data change trigger: status | status_value | status_value_timestamp"
    )
    deadband_type: DeadbandType = Field(
        "none", description="none | absolute | percent (percent needs the node's EURange property)"
    )
    deadband_value: float = Field(0.0, ge=0, description="deadband, in the value's unit or in percent")
    groups: dict[GroupName, OpcUaGroup] = Field(
        default_factory=dict,
        description="named groups with their own Subscription / poll loop; bindings pick one with "
        "'group'; the connection's own settings are the group 'default'",
    )
    subscribe_batch_size: int = Field(
        1000,
        ge=1,
        le=100_000,
        description="monitored items per CreateMonitoredItems call, and nodes per Read or "
        "TranslateBrowsePaths call; lowered to the server's OperationLimits at connect",
    )
    poll_interval: float = Field(1.0, gt=0, description="poll mode: seconds between Reads of all signals")
    reconnect_initial: float = Field(0.5, gt=0, description="first reconnect delay, seconds")
    reconnect_max: float = Field(30.0, gt=0, description="longest reconnect delay, seconds")
    watchdog_interval: float = Field(
        5.0, gt=0, description="seconds between liveness probes (a Read of the server's CurrentTime)"
    )
    load_data_types: bool = Field(
        True, description="read the server's structure definitions at connect, so structures decode to dicts"
    )
    data_types_timeout: float = Field(
        10.0, gt=0, description="seconds allowed for loading the structure definitions"
    )
    security_policy: SecurityPolicy = Field("None", description="OPC UA security policy of the channel")
    security_mode: SecurityMode = Field("None", description="message security mode of the channel")
    certificate: str | None = Field(
        None, description="client certificate file (.der/.pem); generated under pki_dir when not given"
    )
    private_key: str | None = Field(None, description="client private key file (.pem/.der)")
    private_key_password: SecretStr | None = Field(None, description="password of the private key file")
    application_uri: str | None = Field(
        None,
        description="client ApplicationUri (in the certificate's SAN); default 'urn:<host>:parklink', "
        "or the URI in the given certificate",
    )
    pki_dir: str | None = Field(
        None, description="folder of the generated client certificate; default ./pki/<company>/<connection>"
    )
    trust_dir: str | None = Field(
        None, description="folder of trusted server (or CA) certificates; default <pki_dir>/trusted"
    )
    server_certificate: str | None = Field(
        None, description="server certificate file: pinned and trusted; fetched from the endpoint otherwise"
    )
    username: str | None = Field(None, description="user name for UserName authentication")
    password: SecretStr | None = Field(None, description="password for UserName authentication")
    user_certificate: str | None = Field(
        None, description="certificate file for X509 user authentication (identity, not the channel)"
    )
    user_private_key: str | None = Field(None, description="private key file of user_certificate")

    @field_validator("endpoint")
    @classmethod
    def _opc_tcp(cls, value: str) -> str:
        url = urlparse(value)
        if url.scheme != "opc.tcp" or not url.hostname:
            raise ValueError(f"endpoint {value!r} must look like 'opc.tcp://host:4840/path'")
        try:
            url.port  # noqa: B018  # raises ValueError on a malformed port
        except ValueError:
            raise ValueError(f"endpoint {value!r} has an invalid port") from None
        return value

    @model_validator(mode="after")
    def _consistent(self) -> OpcUaConnection:
        if self.reconnect_max < self.reconnect_initial:
            raise ValueError("reconnect_max must be >= reconnect_initial")
        if (self.security_policy == "None") != (self.security_mode == "None"):
            raise ValueError("security_policy and security_mode must both be 'None' or both be set")
        if (self.certificate is None) != (self.private_key is None):
            raise ValueError("give certificate and private_key together (or neither: one is generated)")
        if (self.user_certificate is None) != (self.user_private_key is None):
            raise ValueError("give user_certificate and user_private_key together")
        if self.password is not None and self.username is None:
            raise ValueError("password given without username")
        if self.username is not None and self.user_certificate is not None:
            raise ValueError("choose one identity: username or user_certificate")
        if DEFAULT_GROUP in self.groups:
            raise ValueError("the group 'default' is the connection's own settings; name the group otherwise")
        _check_deadband(self.deadband_type, self.deadband_value)
        return self


class OpcUaBinding(_ItemSettings):
    """Where one signal lives on the server, and how it is sampled."""

    address: str = Field(
        description="node id ('ns=2;s=Line1.Temp', 'ns=2;i=1042', 'nsu=urn:vendor:plc;s=Temp', 'i=2258') "
        "or browse path from Objects ('/2:Plant/2:Line1/2:Temp', 'nsu=urn:vendor:plc;/Plant/Line1/Temp')"
    )
    group: GroupName | None = Field(None, description="the connection group (Subscription) of this signal")
    writable: bool = Field(False, description="allow writes to this node through parklink")

    @field_validator("address")
    @classmethod
    def _address(cls, value: str) -> str:
        parse_address(value)
        return value.strip()
