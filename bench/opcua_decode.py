"""OPC UA hot path without a server: CPU per value of asyncua's decoding vs parklink's conversion.

`python -m bench.opcua_decode --items 10000 --repeat 20`

Builds one PublishResponse's NotificationMessage with N Double items (status, both timestamps,
as a server sends them), encodes it, then times (best of `--repeat`, one core, no I/O):
- `asyncua-decode`: asyncua turning the bytes into objects (every client pays this);
- `per-value`: parklink's previous hot path, `decode_data_value` + `Sample(...)` per item;
- `decode_items`: the current hot path (`codec.decode_items`), one call per notification.
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

from connectors.opcua.codec import decode_data_value, decode_items
from models.sample import Sample


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--stamps", type=int, default=1, help="distinct timestamps in the message")
    args = parser.parse_args()
    data = message(args.items, args.stamps)
    decoded = struct_from_binary(ua.NotificationMessage, Buffer(data))
    items = decoded.NotificationData[0].MonitoredItems
    ids = list(range(args.items))

    def per_value() -> list[Sample]:
        now = time.time()
        return [Sample(ids[item.ClientHandle], *decode_data_value(item.Value, now)) for item in items]

    def batched() -> list[Sample]:
        out: list[Sample] = []
        decode_items(items, ids, time.time(), out)
        return out

    assert per_value() == batched()
    results = {
        "asyncua-decode": best(lambda: struct_from_binary(ua.NotificationMessage, Buffer(data)), args.repeat),
        "per-value": best(per_value, args.repeat),
        "decode_items": best(batched, args.repeat),
    }
    us = {name: seconds * 1e6 / args.items for name, seconds in results.items()}
    print(
        json.dumps(
            {
                "items": args.items,
                "distinct_timestamps": args.stamps,
                "us_per_value": us,
                "decode_items_vs_asyncua_decode": us["decode_items"] / us["asyncua-decode"],
                "per_value_vs_asyncua_decode": us["per-value"] / us["asyncua-decode"],
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
