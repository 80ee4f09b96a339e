"""OPC UA hot path without a server: CPU per value of asyncua's decoding vs parklink's conversion.

`python -m bench.opcua_decode --items 10000 --repeat 20`
`python -m bench.opcua_decode --items 1000,10000,100000 --repeat 5` (and how each grows)

Builds one PublishResponse's NotificationMessage with N Double items (status, both timestamps,
as a server sends them), encodes it, then times (best of `--repeat`, one core, no I/O):
- `asyncua-decode`: asyncua turning the bytes into objects (every client pays this);
- `per-value`: parklink's previous hot path, `decode_data_value` + `Sample(...)` per item;
- `decode_items`: the current hot path (`codec.decode_items`), one call per notification;
- `snapshot-push`: `Snapshot.push` of the resulting batch (the rest of parklink's ingest).
Deterministic enough to compare implementations; the live benchmark is `bench.opcua_ingest`.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from asyncua import ua
from asyncua.common.utils import Buffer
from asyncua.ua.ua_binary import struct_from_binary, struct_to_binary

from bench.growth import growth, overall
from connectors.opcua.codec import decode_data_value, decode_items
from models.sample import Sample
from orchestrator.snapshot import Snapshot


def message(items: int, stamps: int) -> bytes:
    """A NotificationMessage of `items` Doubles with `stamps` distinct timestamps (servers stamp in runs)."""
    base = datetime.now(UTC)
    notifications = []
    for i in range(items):
        when = base + timedelta(milliseconds=i % stamps)
        new: Any = ua.DataValue
        dv = new(ua.Variant(float(i), ua.VariantType.Double), SourceTimestamp=when, ServerTimestamp=when)
        notifications.append(ua.MonitoredItemNotification(ClientHandle=i, Value=dv))
    msg = ua.NotificationMessage(
        SequenceNumber=1,
        PublishTime=base,
        NotificationData=[ua.DataChangeNotification(MonitoredItems=notifications)],
    )
    return bytes(struct_to_binary(msg))


def best(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.process_time()
        fn()
        times.append(time.process_time() - start)
    return min(times)


def measure(items_count: int, stamps: int, repeat: int) -> dict[str, Any]:
    """The three timings for one publish of `items_count` values, µs per value."""
    data = message(items_count, stamps)
    decoded = struct_from_binary(ua.NotificationMessage, Buffer(data))
    items = decoded.NotificationData[0].MonitoredItems
    ids = list(range(items_count))
    snapshot = Snapshot(items_count)

    def per_value() -> list[Sample]:
        now = time.time()
        return [Sample(ids[item.ClientHandle], *decode_data_value(item.Value, now)) for item in items]

    def batched() -> list[Sample]:
        out: list[Sample] = []
        decode_items(items, ids, time.time(), out)
        return out

    assert per_value() == batched()
    batch = batched()
    results = {
        "asyncua-decode": best(lambda: struct_from_binary(ua.NotificationMessage, Buffer(data)), repeat),
        "per-value": best(per_value, repeat),
        "decode_items": best(batched, repeat),
        "snapshot-push": best(lambda: snapshot.push(batch), repeat),
    }
    us = {name: seconds * 1e6 / items_count for name, seconds in results.items()}
    ingest = us["decode_items"] + us["snapshot-push"]
    return {
        "items": items_count,
        "distinct_timestamps": stamps,
        "us_per_value": us,
        # parklink's own ingest per value on top of asyncua: conversion + snapshot store
        "parklink_ingest_us_per_value": ingest,
        "parklink_ingest_vs_asyncua_decode": ingest / us["asyncua-decode"],
        "decode_items_vs_asyncua_decode": us["decode_items"] / us["asyncua-decode"],
        "per_value_vs_asyncua_decode": us["per-value"] / us["asyncua-decode"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--items", default="10000", help="values per publish; comma-separated for several")
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--stamps", type=int, default=1, help="distinct timestamps in the message")
    args = parser.parse_args()
    sizes = [int(n) for n in args.items.split(",") if n]
    runs = [measure(n, min(args.stamps, n), args.repeat) for n in sizes]
    if len(runs) == 1:
        print(json.dumps(runs[0], indent=2))
        return
    totals = {
        name: {r["items"]: r["us_per_value"][name] * r["items"] for r in runs}
        for name in ("asyncua-decode", "decode_items", "snapshot-push")
    }
    totals["parklink_ingest"] = {r["items"]: r["parklink_ingest_us_per_value"] * r["items"] for r in runs}
    grow = {name: growth(values) for name, values in totals.items()}
    verdicts = {name: overall(steps) for name, steps in grow.items()}
    print(json.dumps({"runs": runs, "growth": grow, "verdicts": verdicts}, indent=2))


if __name__ == "__main__":
    main()
