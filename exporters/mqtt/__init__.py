"""MQTT north side: Unified Namespace JSON and Sparkplug B 3.0, with on-disk store-and-forward."""

from exporters.mqtt.client import ConnectionLost, RawMessage
from exporters.mqtt.publisher import MqttHealth, MqttPublisher
from exporters.mqtt.settings import (
    BackoffSettings,
    MqttSettings,
    SparkplugSettings,
    StoreSettings,
    TlsSettings,
)
from exporters.mqtt.sparkplug.edge import SparkplugEdgeNode, SparkplugHealth, device_id
from exporters.mqtt.store import MessageStore, StoredMessage, StoreError
from exporters.mqtt.subscriber import Decoded, MqttSubscriber, SparkplugDecoder, decode_uns
from exporters.mqtt.uns import kpi_messages, kpi_topic, sample_payload, signal_topic

__all__ = [
    "BackoffSettings",
    "ConnectionLost",
    "Decoded",
    "MessageStore",
    "MqttHealth",
    "MqttPublisher",
    "MqttSettings",
    "MqttSubscriber",
    "RawMessage",
    "SparkplugDecoder",
    "SparkplugEdgeNode",
    "SparkplugHealth",
    "SparkplugSettings",
    "StoreError",
    "StoreSettings",
    "StoredMessage",
    "TlsSettings",
    "decode_uns",
    "device_id",
    "kpi_messages",
    "kpi_topic",
    "sample_payload",
    "signal_topic",
]
