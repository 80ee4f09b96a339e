"""MQTT publish path: cost of `on_batch` on the event loop, and end-to-end UNS throughput to a broker.

`python -m bench.mqtt_publish --signals 10000 --batches 20 [--host 127.0.0.1 --port 1883]`

1. `on_batch` (UNS publisher and Sparkplug edge node): µs per sample on the event loop, the only
   cost the connectors' hot path pays.
2. flush: JSON encoding + one SQLite transaction per flush (worker thread), µs per message.
3. drain: from the first batch until the broker acknowledged every message (QoS 1), messages/s;
   a subscriber in the same process counts what reaches it (Mosquitto drops QoS 1 messages for a
   subscriber that falls more than `max_queued_messages`, default 1000, behind).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import tempfile
import time
from pathlib import Path

from exporters.mqtt.publisher import MqttPublisher
from exporters.mqtt.settings import MqttSettings
from exporters.mqtt.sparkplug.edge import SparkplugEdgeNode
from exporters.mqtt.subscriber import MqttSubscriber
from models.park import AssetRef, Park, SignalRef
from models.sample import Sample
from models.status import GOOD


def park_of(signals: int, per_asset: int = 20) -> Park:
    """A park of `signals` float signals, `per_asset` per asset."""
    assets = [
        AssetRef("acme", "north", "", f"l{i // 50}", f"m{i}", "", "t", "c", None)
        for i in range((signals + per_asset - 1) // per_asset)
    ]
    refs = [
        SignalRef(i, assets[i // per_asset], f"s{i % per_asset}", None, "", "float64", None)
        for i in range(signals)
    ]
    return Park("bench", "Bench", {"acme": "Acme"}, {("acme", "north"): "UTC"}, assets, refs, [])


async def main(args: argparse.Namespace) -> dict[str, float]:
    """Run the three measurements; a dict of results."""
    park = park_of(args.signals)
    token = secrets.token_hex(3)
    with tempfile.TemporaryDirectory() as tmp:
        settings = MqttSettings.model_validate(
            {
                "host": args.host,
                "port": args.port,
                "topic_prefix": f"bench-{token}",
                "retain": False,
                "payloads": ["uns_json", "sparkplug"],
                "store": {"path": str(Path(tmp) / "q.sqlite")},
                "sparkplug": {"group_id": f"bench-{token}"},
            }
        )
        batches = [
            [
                Sample(i, float(b * 1000 + i % 1000), GOOD, time.time(), time.time())
                for i in range(args.signals)
            ]
            for b in range(args.batches)
        ]
        total = args.signals * args.batches
        publisher = MqttPublisher(settings, park)
        edge = SparkplugEdgeNode(settings, park)
        edge._live = True  # as after its births: every change is queued for the next DDATA
        t = time.perf_counter()
        for batch in batches:
            edge.on_batch(batch)
        edge_us = (time.perf_counter() - t) / total * 1e6
        async with MqttSubscriber(settings, topics=[f"{settings.topic_prefix}/#"]) as sub:
            publisher.sparkplug = None  # the UNS path alone for the throughput figure
            start = time.perf_counter()
            for batch in batches:
                publisher.on_batch(batch)
            on_batch_us = (time.perf_counter() - start) / total * 1e6
            t = time.perf_counter()
            await publisher.flush()
            flush_us = (time.perf_counter() - t) / total * 1e6
            task = asyncio.create_task(publisher.run())
            assert await publisher.wait_drained(120)
            drained = time.perf_counter() - start
            received = 0
            try:  # what reached a subscriber in the same process (the broker drops past its queue)
                while True:
                    await asyncio.wait_for(sub.next(), 2)
                    received += 1
            except TimeoutError:
                pass
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            publisher.close()
    return {
        "messages": total,
        "uns_on_batch_us_per_sample": round(on_batch_us, 3),
        "sparkplug_on_batch_us_per_sample": round(edge_us, 3),
        "flush_us_per_message": round(flush_us, 2),
        "acknowledged_messages_per_s": round(total / drained),
        "received_by_subscriber": received,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--signals", type=int, default=10_000)
    parser.add_argument("--batches", type=int, default=5)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=1883)
    print(json.dumps(asyncio.run(main(parser.parse_args())), indent=2))
