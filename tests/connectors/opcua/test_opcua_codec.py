"""Table tests of the pure OPC UA conversions: node id strings, DataValue decoding, write encoding."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, cast

import pytest
from asyncua import ua

from connectors.opcua.codec import (
    BrowsePathAddress,
    EncodeError,
    NodeAddress,
    PathElement,
    decode_data_value,
    decode_items,
    decode_variant,
    encode_value,
    escape_browse_name,
    make_node_id,
    parse_address,
    parse_browse_path,
    parse_node_id,
    structure_to_dict,
    variant_type_of,
)
from models.sample import Sample
from models.status import (
    BAD_DATA_TYPE_ID_UNKNOWN,
    BAD_NODE_ID_UNKNOWN,
    BAD_OUT_OF_RANGE,
    BAD_TYPE_MISMATCH,
    GOOD,
    UNCERTAIN,
)

GUID = "72962b91-fa75-4ae6-8d28-b404dc7daf63"


def status_code(value: int) -> ua.StatusCode:
    """ua.StatusCode from a plain int (asyncua annotates it with a marker subclass)."""
    new: Any = ua.StatusCode
    return cast(ua.StatusCode, new(value))


# ----------------------------------------------------------------------------------------------
# node ids


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("ns=2;s=mill1.State", NodeAddress("s", "mill1.State", 2)),
        ("ns=2;i=1042", NodeAddress("i", 1042, 2)),
        ("i=2258", NodeAddress("i", 2258, 0)),
        ("s=Plain", NodeAddress("s", "Plain", 0)),
        ("nsu=urn:vendor:plc;s=Line1.Temp", NodeAddress("s", "Line1.Temp", namespace_uri="urn:vendor:plc")),
        ("nsu=http://x.org/UA/;i=7", NodeAddress("i", 7, namespace_uri="http://x.org/UA/")),
        ("ns=3;s=a;b=c", NodeAddress("s", "a;b=c", 3)),  # everything after 's=' is the name
        ("ns=1;g=" + GUID, NodeAddress("g", uuid.UUID(GUID), 1)),
        ("ns=1;b=AAEC", NodeAddress("b", b"\x00\x01\x02", 1)),
        ("  ns=2;s=padded  ", NodeAddress("s", "padded", 2)),  # config whitespace is trimmed
        ("ns=65535;i=4294967295", NodeAddress("i", 4294967295, 65535)),
    ],
)
def test_parse_node_id(text: str, expected: NodeAddress) -> None:
    """Every documented form parses to namespace, kind and identifier."""
    assert parse_node_id(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "malformed"),
        ("mill1.State", "malformed"),
        ("ns=2", "malformed"),
        ("ns=x;s=a", "malformed"),
        ("ns=2;q=1", "malformed"),
        ("ns=2;s=", "malformed"),
        ("nsu=;s=a", "malformed"),
        ("ns=2;i=abc", "must be a number"),
        ("ns=2;i=-1", "must be a number"),
        ("ns=2;i=4294967296", "must be a number"),
        ("ns=70000;i=1", "namespace index"),
        ("ns=1;g=not-a-guid", "must be a GUID"),
        ("ns=1;b=!!!", "must be base64"),
    ],
)
def test_parse_node_id_errors(text: str, message: str) -> None:
    """Malformed ids fail with a message that says what is wrong."""
    with pytest.raises(ValueError, match=message):
        parse_node_id(text)


def test_malformed_message_lists_the_forms() -> None:
    """The error shows how node ids are written."""
    with pytest.raises(ValueError, match=r"ns=<index>;s=<name>.*nsu=<namespace uri>"):
        parse_node_id("Line1/Temp")


def test_resolve() -> None:
    """Index ids resolve as is; URI ids through the NamespaceArray; unknown URIs raise LookupError."""
    namespaces = ["http://opcfoundation.org/UA/", "urn:server", "urn:parklink:demo"]
    assert parse_node_id("ns=2;s=a").resolve() == make_node_id("a", 2)
    assert parse_node_id("nsu=urn:parklink:demo;s=a").resolve(namespaces) == make_node_id("a", 2)
    assert parse_node_id("nsu=urn:server;i=5").resolve(namespaces) == make_node_id(5, 1)
    with pytest.raises(LookupError, match="urn:other"):
        parse_node_id("nsu=urn:other;s=a").resolve(namespaces)
    with pytest.raises(LookupError):
        parse_node_id("nsu=urn:server;s=a").resolve(None)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("/2:Plant/2:Line1/2:State", ((("Plant", 2), ("Line1", 2), ("State", 2)), None)),
        ("/Server/ServerStatus", ((("Server", 0), ("ServerStatus", 0)), None)),
        (
            "nsu=urn:parklink:demo;/Machines/mill1/State",
            ((("Machines", None), ("mill1", None), ("State", None)), "urn:parklink:demo"),
        ),
        ("nsu=urn:x;/0:Server/Tag", ((("Server", 0), ("Tag", None)), "urn:x")),
        ("/2:a&/b/2:c&&d", ((("a/b", 2), ("c&d", 2)), None)),  # '&' escapes '/' and itself
        ("/&2:Name", ((("2:Name", 0),), None)),  # a name that looks like an index
        ("/2:Name:With:Colons", ((("Name:With:Colons", 2),), None)),
    ],
)
def test_parse_browse_path(
    text: str, expected: tuple[tuple[tuple[str, int | None], ...], str | None]
) -> None:
    """Browse paths from Objects: qualified names, the nsu= form, escapes; they round-trip."""
    elements, uri = expected
    address = parse_browse_path(text)
    assert address == BrowsePathAddress(tuple(PathElement(n, i) for n, i in elements), uri)
    assert parse_address(text) == address
    assert parse_browse_path(str(address)) == address


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("/", "malformed"),
        ("/2:a//b", "empty segment"),
        ("/2:a/", "empty segment"),
        ("/70000:a", "namespace index"),
        ("Plant/Line1", "or as a browse path"),
    ],
)
def test_parse_browse_path_errors(text: str, message: str) -> None:
    """Malformed paths say what is wrong."""
    with pytest.raises(ValueError, match=message):
        parse_address(text)


def test_browse_path_resolve() -> None:
    """A path becomes a TranslateBrowsePaths item from Objects; nsu= takes the server's index."""
    path = parse_browse_path("nsu=urn:server;/Machines/0:Tag").resolve(
        ["http://opcfoundation.org/UA/", "urn:x", "urn:server"]
    )
    assert path.StartingNode == make_node_id(85)
    names = [(e.TargetName.Name, e.TargetName.NamespaceIndex) for e in path.RelativePath.Elements]
    assert names == [("Machines", 2), ("Tag", 0)]
    assert all(
        e.ReferenceTypeId == make_node_id(33) and e.IncludeSubtypes for e in path.RelativePath.Elements
    )
    with pytest.raises(LookupError, match="urn:server"):
        parse_browse_path("nsu=urn:server;/Machines").resolve(["http://opcfoundation.org/UA/"])
    assert escape_browse_name("a/b&c") == "a&/b&&c" and escape_browse_name("1:x") == "&1:x"


# ----------------------------------------------------------------------------------------------
# decoding

T0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
T1 = datetime(2026, 1, 2, 3, 4, 6, tzinfo=UTC)
VT = ua.VariantType


@pytest.mark.parametrize(
    ("variant", "expected"),
    [
        (None, (None, GOOD)),
        (ua.Variant(), (None, GOOD)),
        (ua.Variant(True, VT.Boolean), (True, GOOD)),
        (ua.Variant(-5, VT.SByte), (-5, GOOD)),
        (ua.Variant(70000, VT.UInt32), (70000, GOOD)),
        (ua.Variant(2**63, VT.UInt64), (2**63, GOOD)),
        (ua.Variant(1.5, VT.Float), (1.5, GOOD)),
        (ua.Variant(2.25, VT.Double), (2.25, GOOD)),
        (ua.Variant("ok", VT.String), ("ok", GOOD)),
        (ua.Variant(None, VT.String), (None, GOOD)),
        (ua.Variant(b"\x01\x02", VT.ByteString), (b"\x01\x02", GOOD)),
        (ua.Variant(T0, VT.DateTime), (T0.timestamp(), GOOD)),
        (ua.Variant(datetime(2026, 1, 2, 3, 4, 5), VT.DateTime), (T0.timestamp(), GOOD)),  # naive = UTC
        (ua.Variant(uuid.UUID(GUID), VT.Guid), (GUID, GOOD)),
        (ua.Variant(make_node_id("a", 2), VT.NodeId), ("ns=2;s=a", GOOD)),
        (ua.Variant(status_code(BAD_NODE_ID_UNKNOWN), VT.StatusCode), (BAD_NODE_ID_UNKNOWN, GOOD)),
        (ua.Variant(ua.QualifiedName("Name", 2), VT.QualifiedName), ("2:Name", GOOD)),
        (ua.Variant(ua.LocalizedText("Hallo", "de"), VT.LocalizedText), ("Hallo", GOOD)),
        (ua.Variant([1, 2, 3], VT.Int32), ([1, 2, 3], GOOD)),
        (ua.Variant([T0, T1], VT.DateTime), ([T0.timestamp(), T1.timestamp()], GOOD)),
        (
            ua.Variant(ua.ExtensionObject(make_node_id(1, 2)), VT.ExtensionObject),
            (None, BAD_DATA_TYPE_ID_UNKNOWN),
        ),
        (ua.Variant(ua.Range(1.0, 2.0), VT.ExtensionObject), ({"Low": 1.0, "High": 2.0}, GOOD)),
        (
            ua.Variant(ua.EUInformation("urn:x", 4408652, ua.LocalizedText("°C"), None), VT.ExtensionObject),
            ({"NamespaceUri": "urn:x", "UnitId": 4408652, "DisplayName": "°C", "Description": None}, GOOD),
        ),
        (
            ua.Variant([ua.Range(0.0, 1.0), ua.Range(2.0, 3.0)], VT.ExtensionObject),
            ([{"Low": 0.0, "High": 1.0}, {"Low": 2.0, "High": 3.0}], GOOD),
        ),
        (ua.Variant(ua.DataValue(ua.Variant(1, VT.Int32)), VT.DataValue), (None, BAD_DATA_TYPE_ID_UNKNOWN)),
    ],
)
def test_decode_variant(variant: ua.Variant | None, expected: tuple[Any, int]) -> None:
    """Each built-in type maps to a parklink Value; known structures are dicts, unknown ones Bad."""
    assert decode_variant(variant) == expected


def _dv(value: Any = 1.0, status: int | None = GOOD, source: Any = T0, server: Any = T1) -> ua.DataValue:
    new: Any = ua.DataValue
    code = None if status is None else status_code(status)
    variant = None if value is None else ua.Variant(value, VT.Double)
    return cast(ua.DataValue, new(variant, code, SourceTimestamp=source, ServerTimestamp=server))


RECEIVED = 1_800_000_000.0
EPOCH_1601 = datetime(1601, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("dv", "expected"),
    [
        (_dv(), (1.0, GOOD, T0.timestamp(), T1.timestamp())),
        (_dv(status=None), (1.0, GOOD, T0.timestamp(), T1.timestamp())),
        (_dv(status=UNCERTAIN), (1.0, UNCERTAIN, T0.timestamp(), T1.timestamp())),
        (_dv(None, BAD_NODE_ID_UNKNOWN), (None, BAD_NODE_ID_UNKNOWN, T0.timestamp(), T1.timestamp())),
        (_dv(source=None), (1.0, GOOD, T1.timestamp(), T1.timestamp())),  # no source time: server's
        (_dv(source=None, server=None), (1.0, GOOD, RECEIVED, RECEIVED)),  # none: receive time
        (_dv(source=EPOCH_1601, server=EPOCH_1601), (1.0, GOOD, RECEIVED, RECEIVED)),  # DateTime 0
    ],
)
def test_decode_data_value(dv: ua.DataValue, expected: tuple[Any, int, float, float]) -> None:
    """Status and both timestamps come through; missing times fall back to the receive time."""
    assert decode_data_value(dv, RECEIVED) == expected


def test_decode_structure_keeps_a_bad_status() -> None:
    """An undecodable structure with a Bad status keeps the server's status, not BadDataTypeIdUnknown."""
    new: Any = ua.DataValue
    raw = ua.ExtensionObject(make_node_id(1, 2), b"\x01")
    dv = new(ua.Variant(raw, VT.ExtensionObject), status_code(BAD_NODE_ID_UNKNOWN))
    assert decode_data_value(dv, RECEIVED)[:2] == (None, BAD_NODE_ID_UNKNOWN)
    dv = new(ua.Variant(raw, VT.ExtensionObject))
    assert decode_data_value(dv, RECEIVED)[:2] == (None, BAD_DATA_TYPE_ID_UNKNOWN)


def test_structure_to_dict_nested() -> None:
    """Nested structures, enumerations, node ids, times and arrays become plain values."""
    status = ua.ServerStatusDataType()
    status.StartTime = T0
    status.CurrentTime = T1
    status.State = ua.ServerState.Running
    status.BuildInfo.ProductName = "plc"
    status.ShutdownReason = ua.LocalizedText("none")
    result = structure_to_dict(status)
    assert result["StartTime"] == T0.timestamp() and result["CurrentTime"] == T1.timestamp()
    assert result["State"] == 0 and isinstance(result["State"], int) and not isinstance(result["State"], bool)
    assert isinstance(result["BuildInfo"], dict) and result["BuildInfo"]["ProductName"] == "plc"
    assert result["ShutdownReason"] == "none"
    node = ua.ReferenceDescription()
    node.NodeId = make_node_id("a", 2)
    node.BrowseName = ua.QualifiedName("A", 2)
    assert structure_to_dict(node)["NodeId"] == "ns=2;s=a"
    assert structure_to_dict(node)["BrowseName"] == "2:A"
    with pytest.raises(ValueError, match="no definition"):
        structure_to_dict(ua.ExtensionObject(make_node_id(1, 2)))


def _item(handle: int, dv: ua.DataValue) -> ua.MonitoredItemNotification:
    item = ua.MonitoredItemNotification()
    item.ClientHandle = handle
    item.Value = dv
    return item


def test_decode_items_matches_decode_data_value() -> None:
    """The hot path gives the same Samples as the per-value decoder, whatever the mix of items."""
    dvs = [
        _dv(),
        _dv(2.0),
        _dv(3.0, source=T1, server=T1),
        _dv(status=UNCERTAIN),
        _dv(None, BAD_NODE_ID_UNKNOWN),
        _dv(source=None),
        _dv(source=None, server=None),
        _dv(source=EPOCH_1601, server=EPOCH_1601),
        _dv(source=T0, server=EPOCH_1601),
        _dv(source=EPOCH_1601, server=T1),
        cast(Any, ua.DataValue)(ua.Variant([1, 2], VT.Int32), SourceTimestamp=T0, ServerTimestamp=T0),
        cast(Any, ua.DataValue)(ua.Variant(T1, VT.DateTime), SourceTimestamp=T0, ServerTimestamp=T0),
        cast(Any, ua.DataValue)(ua.Variant(ua.Range(1.0, 2.0), VT.ExtensionObject)),
        cast(Any, ua.DataValue)(ua.Variant(ua.ExtensionObject(make_node_id(1, 2)), VT.ExtensionObject)),
        cast(Any, ua.DataValue)(ua.Variant("text", VT.String), status_code(UNCERTAIN)),
    ]
    ids = [100 + i for i in range(len(dvs))]
    items = [_item(i, dv) for i, dv in enumerate(dvs)] + [_item(len(dvs) + 5, _dv())]  # unknown handle
    out: list[Sample] = []
    unsupported = decode_items(items, ids, RECEIVED, out)
    assert out == [Sample(ids[i], *decode_data_value(dv, RECEIVED)) for i, dv in enumerate(dvs)]
    assert all(type(s) is Sample for s in out)
    assert unsupported == [len(dvs) - 2]


# ----------------------------------------------------------------------------------------------
# encoding


@pytest.mark.parametrize(
    ("value", "vtype", "expected"),
    [
        (1500, VT.Double, 1500.0),
        (1.25, VT.Float, 1.25),
        (7, VT.Int32, 7),
        (7.0, VT.UInt16, 7),
        (True, VT.Boolean, True),
        (0, VT.Boolean, False),
        (255, VT.Byte, 255),
        (-128, VT.SByte, -128),
        (2**64 - 1, VT.UInt64, 2**64 - 1),
        ("text", VT.String, "text"),
        (bytearray(b"ab"), VT.ByteString, b"ab"),
        (T0.timestamp(), VT.DateTime, T0),
        (datetime(2026, 1, 2, 3, 4, 5), VT.DateTime, T0),
        ([1, 2], VT.Int16, [1, 2]),
    ],
)
def test_encode_value(value: object, vtype: ua.VariantType, expected: object) -> None:
    """Python values convert to the node's VariantType."""
    variant = encode_value(value, vtype)
    assert variant.VariantType == vtype
    assert variant.Value == expected
    assert variant.is_array == isinstance(expected, list)


@pytest.mark.parametrize(
    ("value", "vtype", "status"),
    [
        ("fast", VT.Double, BAD_TYPE_MISMATCH),
        (True, VT.Double, BAD_TYPE_MISMATCH),
        (1.5, VT.Int32, BAD_TYPE_MISMATCH),
        ("1", VT.Int32, BAD_TYPE_MISMATCH),
        (2, VT.Boolean, BAD_TYPE_MISMATCH),
        (5, VT.String, BAD_TYPE_MISMATCH),
        ("x", VT.ByteString, BAD_TYPE_MISMATCH),
        (256, VT.Byte, BAD_OUT_OF_RANGE),
        (-1, VT.UInt32, BAD_OUT_OF_RANGE),
        (2**31, VT.Int32, BAD_OUT_OF_RANGE),
        (1e39, VT.Float, BAD_OUT_OF_RANGE),
        ([1, 300], VT.Byte, BAD_OUT_OF_RANGE),
        (1, VT.ExtensionObject, BAD_TYPE_MISMATCH),
    ],
)
def test_encode_value_errors(value: object, vtype: ua.VariantType, status: int) -> None:
    """Values that do not fit say why with a status code."""
    with pytest.raises(EncodeError) as info:
        encode_value(value, vtype)
    assert info.value.status == status


@pytest.mark.parametrize(
    ("data_type", "expected"),
    [
        (make_node_id(11), VT.Double),
        (make_node_id(6), VT.Int32),
        (make_node_id(12), VT.String),
        (make_node_id(21), VT.LocalizedText),
        (make_node_id(22), None),  # Structure
        (make_node_id(24), None),  # BaseDataType
        (make_node_id(29), None),  # Enumeration
        (make_node_id(6, 2), None),  # a vendor type
        (make_node_id("Double", 0), None),
    ],
)
def test_variant_type_of(data_type: ua.NodeId, expected: ua.VariantType | None) -> None:
    """Only the built-in DataType ids name a VariantType."""
    assert variant_type_of(data_type) == expected
