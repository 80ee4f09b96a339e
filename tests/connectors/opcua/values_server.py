"""An asyncua server exposing one variable per built-in type, arrays and custom structures (tests).

Run as its own process (`python values_server.py PORT`; prints READY), so that the structure
definitions it creates are not already known to the client: asyncua keeps generated structure
classes in a process-wide registry.

Namespace `urn:parklink:values`; node ids `ns=2;s=V.<Name>` under Objects/Values. Every value is
stamped with SOURCE_TIME and SERVER_TIME (see VALUES in test_opcua_values.py for the list).
"""

from __future__ import annotations

import asyncio
import signal
import sys
import uuid
from datetime import UTC, datetime
from typing import Any

from asyncua import Server, ua
from asyncua.common.structures104 import new_struct, new_struct_field

SOURCE_TIME = datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)
SERVER_TIME = datetime(2026, 1, 2, 3, 4, 6, 654321, tzinfo=UTC)
GUID = uuid.UUID("72962b91-fa75-4ae6-8d28-b404dc7daf63")
VT = ua.VariantType
UNCERTAIN_INITIAL = 0x40920000  # UncertainInitialValue
BAD_SENSOR = 0x808C0000  # BadSensorFailure


async def serve(port: int) -> None:
    server = Server()
    await server.init()
    server.set_endpoint(f"opc.tcp://127.0.0.1:{port}/values/")
    server.set_security_policy([ua.SecurityPolicyType.NoSecurity])
    idx = await server.register_namespace("urn:parklink:values")
    folder = await server.nodes.objects.add_folder(ua.NodeId("V", idx), ua.QualifiedName("Values", idx))

    point, _ = await new_struct(
        server,
        idx,
        "ParklinkPoint",
        [
            new_struct_field("X", VT.Double),
            new_struct_field("Y", VT.Double),
            new_struct_field("Label", VT.String),
            new_struct_field("Tags", VT.String, array=True),
        ],
    )
    pose, _ = await new_struct(
        server, idx, "ParklinkPose", [new_struct_field("Origin", point), new_struct_field("Angle", VT.Float)]
    )
    await server.load_data_type_definitions()
    types: Any = ua
    point_value = types.ParklinkPoint(X=1.5, Y=-2.0, Label="p1", Tags=["a", "b"])
    pose_value = types.ParklinkPose(Origin=point_value, Angle=0.5)

    values: list[tuple[str, Any, VT, int, ua.NodeId | None]] = [
        ("Boolean", True, VT.Boolean, 0, None),
        ("SByte", -100, VT.SByte, 0, None),
        ("Byte", 200, VT.Byte, 0, None),
        ("Int16", -30000, VT.Int16, 0, None),
        ("UInt16", 60000, VT.UInt16, 0, None),
        ("Int32", -2_000_000_000, VT.Int32, 0, None),
        ("UInt32", 4_000_000_000, VT.UInt32, 0, None),
        ("Int64", -(2**62), VT.Int64, 0, None),
        ("UInt64", 2**63 + 1, VT.UInt64, 0, None),
        ("Float", 1.5, VT.Float, 0, None),
        ("Double", 3.141592653589793, VT.Double, 0, None),
        ("String", "Grüße; ns=2", VT.String, 0, None),
        ("EmptyString", "", VT.String, 0, None),
        ("DateTime", datetime(2025, 6, 30, 12, 0, 0, 500000, tzinfo=UTC), VT.DateTime, 0, None),
        ("ByteString", b"\x00\x01\xfe\xff", VT.ByteString, 0, None),
        ("Guid", GUID, VT.Guid, 0, None),
        ("LocalizedText", ua.LocalizedText("Hallo", "de"), VT.LocalizedText, 0, None),
        ("NodeIdValue", ua.NodeId("x", idx), VT.NodeId, 0, None),
        ("Int32Array", [1, -2, 3], VT.Int32, 0, None),
        ("DoubleArray", [0.5, 1.5], VT.Double, 0, None),
        ("StringArray", ["a", "b", ""], VT.String, 0, None),
        ("BooleanArray", [True, False], VT.Boolean, 0, None),
        ("EmptyArray", [], VT.Int32, 0, None),
        ("Uncertain", 7.0, VT.Double, UNCERTAIN_INITIAL, None),
        ("BadSensor", 0.0, VT.Double, BAD_SENSOR, None),  # a Bad value is sent without its value
        ("Point", point_value, VT.ExtensionObject, 0, point.nodeid),
        ("Pose", pose_value, VT.ExtensionObject, 0, pose.nodeid),
        ("PointArray", [point_value, point_value], VT.ExtensionObject, 0, point.nodeid),
        # A structure whose encoding id the server does not define: no client can decode it.
        (
            "Opaque",
            ua.ExtensionObject(ua.NodeId(999_999, idx), b"\x01\x02"),
            VT.ExtensionObject,
            0,
            ua.NodeId(ua.ObjectIds.Structure),
        ),
    ]
    for name, value, vtype, status, data_type in values:
        node_id = ua.NodeId(f"V.{name}", idx)
        variant = ua.Variant(value, vtype, is_array=isinstance(value, list))
        if data_type is not None:
            var = await folder.add_variable(node_id, ua.QualifiedName(name, idx), variant, datatype=data_type)
        else:
            var = await folder.add_variable(node_id, ua.QualifiedName(name, idx), variant)
        dv = ua.DataValue(
            None if status & 0x80000000 else variant,
            ua.StatusCode(status),
            SourceTimestamp=SOURCE_TIME,
            ServerTimestamp=SERVER_TIME,
        )
        await server.write_attribute_value(var.nodeid, dv)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        print("READY", flush=True)
        await stop.wait()


if __name__ == "__main__":
    import logging

    logging.basicConfig(level=logging.ERROR)
    asyncio.run(serve(int(sys.argv[1])))
