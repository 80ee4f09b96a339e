"""Config models of the OPC UA connector: one connection (a server endpoint) and one signal's binding.

Validated once at load, without I/O. Field descriptions become the JSON schema editors show.
"""

from __future__ import annotations

from typing import Literal
from urllib.parse import urlparse

from pydantic import Field, SecretStr, field_validator, model_validator

from connectors.opcua.codec import parse_node_id
from models.assets import Strict

SecurityPolicy = Literal["None", "Basic256Sha256", "Aes128_Sha256_RsaOaep", "Aes256_Sha256_RsaPss"]
SecurityMode = Literal["None", "Sign", "SignAndEncrypt"]


class OpcUaConnection(Strict):
    """One OPC UA server, reached through one session."""

    kind: Literal["opcua"]
    endpoint: str = Field(description="server endpoint URL, e.g. 'opc.tcp://plc1.local:4840/'")
    timeout: float = Field(5.0, gt=0, description="timeout of each request, seconds")
    mode: Literal["subscribe", "poll"] = Field(
        "subscribe", description="'subscribe': the server reports changes; 'poll': Read every poll_interval"
    )
    publishing_interval: float = Field(
        500.0, gt=0, description="subscription publishing interval, milliseconds"
    )
    sampling_interval: float = Field(
        250.0, ge=0, description="default sampling interval of monitored items, milliseconds (0 = fastest)"
    )
    queue_size: int = Field(1, ge=1, description="server-side queue size per monitored item")
    subscribe_batch_size: int = Field(
        1000,
        ge=1,
        le=100_000,
        description="monitored items per CreateMonitoredItems call, and nodes per Read in poll mode; "
        "keep at or below the server's MaxMonitoredItemsPerCall / MaxNodesPerRead",
    )
    poll_interval: float = Field(1.0, gt=0, description="poll mode: seconds between Reads of all signals")
    reconnect_initial: float = Field(0.5, gt=0, description="first reconnect delay, seconds")
    reconnect_max: float = Field(30.0, gt=0, description="longest reconnect delay, seconds")
    watchdog_interval: float = Field(
        5.0, gt=0, description="seconds between liveness probes (a Read of the server's CurrentTime)"
    )
    security_policy: SecurityPolicy = Field("None", description="OPC UA security policy of the channel")
    security_mode: SecurityMode = Field("None", description="message security mode of the channel")
    certificate: str | None = Field(None, description="client certificate file (.pem/.der), for security")
    private_key: str | None = Field(None, description="client private key file (.pem/.der), for security")
    server_certificate: str | None = Field(
        None, description="server certificate file; fetched from the endpoint when not given"
    )
    username: str | None = Field(None, description="user name for UserName authentication")
    password: SecretStr | None = Field(None, description="password for UserName authentication")

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
        if self.security_policy != "None" and not (self.certificate and self.private_key):
            raise ValueError(f"security_policy {self.security_policy} needs certificate and private_key")
        if self.password is not None and self.username is None:
            raise ValueError("password given without username")
        if any("," in (path or "") for path in (self.certificate, self.private_key, self.server_certificate)):
            raise ValueError("certificate and key paths must not contain ','")
        return self

    def security_string(self) -> str | None:
        """asyncua's `Policy,Mode,certificate,private_key[,server_certificate]`; None without security."""
        if self.security_policy == "None":
            return None
        parts = [
            self.security_policy.replace("_", ""),
            self.security_mode,
            self.certificate,
            self.private_key,
        ]
        return ",".join(p for p in [*parts, self.server_certificate] if p)


class OpcUaBinding(Strict):
    """Where one signal lives on the server."""

    address: str = Field(
        description="node id: 'ns=2;s=Line1.Temp', 'ns=2;i=1042', 'nsu=urn:vendor:plc;s=Temp' or 'i=2258'"
    )
    sampling_interval: float | None = Field(
        None, ge=0, description="milliseconds; overrides the connection's sampling_interval"
    )
    writable: bool = Field(False, description="allow writes to this node through parklink")

    @field_validator("address")
    @classmethod
    def _node_id(cls, value: str) -> str:
        parse_node_id(value)
        return value.strip()
