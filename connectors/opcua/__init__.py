"""OPC UA connector: subscriptions or polled Reads against one server per connection (asyncua 2.1)."""

from connectors.opcua.config import OpcUaBinding, OpcUaConnection
from connectors.opcua.kind import KIND

__all__ = ["KIND", "OpcUaBinding", "OpcUaConnection"]
