"""`parklink browse opc.tcp://host:port`: walk a server's address space, print a config snippet.

Breadth-first from `--root` (default: the Objects folder), following hierarchical references into
Objects (not into Variables: their children are properties such as EURange), at most `--depth`
levels, in batched Browse requests (and BrowseNext for continuation points). Variables whose browse
path matches `--filter` are printed as an `asset_types` entry: one signal per variable, `type` from
its DataType, `binding.address` with the namespace URI (`nsu=`), so that the snippet survives the
server renumbering its namespaces. Comments give the browse path, data type and access level.
"""

from __future__ import annotations

import argparse
import fnmatch
import hashlib
import json
import re
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlparse

from asyncua import ua
from asyncua.ua.attribute_ids import AttributeIds
from asyncua.ua.object_ids import ObjectIds
from pydantic import ValidationError

from connectors.opcua.codec import (
    OBJECTS_FOLDER,
    BrowsePathAddress,
    escape_browse_name,
    make_node_id,
    parse_address,
)
from connectors.opcua.config import OpcUaConnection
from connectors.opcua.security import Pki
from connectors.opcua.session import Session, close, describe, read, status_name

_HIERARCHICAL = make_node_id(ObjectIds.HierarchicalReferences)
_HAS_SUBTYPE = make_node_id(ObjectIds.HasSubtype)
_MASK = ua.NodeClass.Object | ua.NodeClass.Variable
_MAX_REFERENCES = 1000  # per node and Browse response; more come through BrowseNext

# DataType node ids of namespace 0 -> parklink type (built-ins 1..21 and common subtypes)
_BUILTIN: dict[int, str] = {
    1: "bool",
    2: "int16",  # SByte
    3: "uint16",  # Byte
    4: "int16",
    5: "uint16",
    6: "int32",
    7: "uint32",
    8: "int64",
    9: "uint64",
    10: "float32",
    11: "float64",
    12: "string",
    13: "datetime",
    14: "string",  # Guid
    15: "bytes",
    16: "string",  # XmlElement
    17: "string",  # NodeId
    18: "string",  # ExpandedNodeId
    19: "uint32",  # StatusCode
    20: "string",  # QualifiedName
    21: "string",  # LocalizedText
    26: "float64",  # Number
    27: "int64",  # Integer
    28: "uint64",  # UInteger
    29: "int32",  # Enumeration
    290: "float64",  # Duration
    294: "datetime",  # UtcTime
    295: "string",  # LocaleId
    30: "bytes",  # Image
}


@dataclass(slots=True)
class Variable:
    node_id: ua.NodeId
    path: list[ua.QualifiedName]
    data_type: ua.NodeId | None = None
    value_rank: int = -1
    access: int = 0
    description: str = ""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of `parklink browse`."""
    parser.add_argument("endpoint", help="server endpoint, e.g. opc.tcp://10.0.3.21:4840/")
    parser.add_argument(
        "--root",
        default="",
        help="where to start: a browse path ('/2:Plant/2:Line1') or a node id; default Objects",
    )
    parser.add_argument("--depth", type=int, default=6, help="levels below the root to walk (default 6)")
    parser.add_argument(
        "--filter",
        default="*",
        help="glob on the browse path, with or without namespace indexes ('*' also matches '/'), "
        "e.g. '*/Temperature' or '/2:Machines/*'",
    )
    parser.add_argument("--name", default="browsed", help="asset type id of the printed snippet")
    parser.add_argument("--max-nodes", type=int, default=100_000, help="stop after this many nodes")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds per request")
    parser.add_argument(
        "--security-policy",
        default="None",
        choices=["None", "Basic256Sha256", "Aes128_Sha256_RsaOaep", "Aes256_Sha256_RsaPss"],
    )
    parser.add_argument("--security-mode", default="None", choices=["None", "Sign", "SignAndEncrypt"])
    parser.add_argument("--username")
    parser.add_argument("--password")
    parser.add_argument(
        "--certificate", help="client certificate file; generated under --pki-dir if not given"
    )
    parser.add_argument("--private-key", help="private key of --certificate")
    parser.add_argument("--pki-dir", default="pki/browse", help="folder of the generated client certificate")
    parser.add_argument("--trust-dir", help="trusted server certificates (default <pki-dir>/trusted)")


async def run(args: argparse.Namespace) -> int:
    """Browse and print the snippet to stdout; 0 on success, 1 if the server cannot be used."""
    try:
        conn = _connection(args)
    except ValidationError as exc:
        print(f"browse: {exc.errors()[0]['msg']}", file=sys.stderr)
        return 2
    session = Session(conn, Pki.of(conn, "", ""))
    try:
        try:
            await session.open(load_types=False)
        except Exception as exc:
            print(f"browse: cannot connect to {conn.endpoint}: {describe(exc)}", file=sys.stderr)
            return 1
        walker = _Walker(session, args)
        try:
            root, root_path = await walker.root(args.root)
            variables = await walker.walk(root, root_path)
            await walker.describe(variables)
            namespaces = list(await session.client.get_namespace_array())
            types = await walker.types(variables)
        except (LookupError, ValueError) as exc:
            print(f"browse: {exc}", file=sys.stderr)
            return 2
        except Exception as exc:
            print(f"browse: {describe(exc)}", file=sys.stderr)
            return 1
        walker.progress(done=True)
        print(render(args, root_path, variables, namespaces, types))
        return 0
    finally:
        await close(session.client)


def _connection(args: argparse.Namespace) -> OpcUaConnection:
    raw: dict[str, Any] = {
        "kind": "opcua",
        "endpoint": args.endpoint,
        "timeout": args.timeout,
        "security_policy": args.security_policy,
        "security_mode": args.security_mode,
        "pki_dir": args.pki_dir,
    }
    for key in ("username", "password", "certificate", "private_key", "trust_dir"):
        if getattr(args, key, None) is not None:
            raw[key] = getattr(args, key)
    return OpcUaConnection.model_validate(raw)


class _Walker:
    def __init__(self, session: Session, args: argparse.Namespace) -> None:
        self.session, self.args = session, args
        self.nodes = 0
        self.variables = 0
        self._tty = sys.stderr.isatty()
        self._shown = 0.0

    def progress(self, done: bool = False) -> None:
        """A counter line on stderr when it is a terminal, at most 10 times a second."""
        if not self._tty or (not done and time.monotonic() - self._shown < 0.1):
            return
        self._shown = time.monotonic()
        end = "\n" if done else ""
        print(
            f"\rbrowsed {self.nodes} nodes, {self.variables} variables", end=end, file=sys.stderr, flush=True
        )

    async def root(self, text: str) -> tuple[ua.NodeId, list[ua.QualifiedName]]:
        if not text or text == "/":
            return OBJECTS_FOLDER, []
        address = parse_address(text)
        namespaces = list(await self.session.client.get_namespace_array())
        if isinstance(address, BrowsePathAddress):
            (result,) = await self.session.client.uaclient.translate_browsepaths_to_nodeids(
                [address.resolve(namespaces)]
            )
            if not result.StatusCode.is_good() or not result.Targets:
                raise LookupError(f"root {text!r} not found ({status_name(result.StatusCode.value)})")
            target = result.Targets[0].TargetId
            node_id = make_node_id(target.Identifier, target.NamespaceIndex, target.NodeIdType)
            element: Any = address.resolve(namespaces).RelativePath.Elements
            return node_id, [e.TargetName for e in element]
        node_id = address.resolve(namespaces)
        (dv,) = await read(self.session.client, [node_id], AttributeIds.BrowseName)
        if not dv.StatusCode.is_good():
            raise LookupError(f"root {text!r} not found ({status_name(dv.StatusCode.value)})")
        return node_id, [dv.Value.Value]

    async def walk(self, root: ua.NodeId, root_path: list[ua.QualifiedName]) -> list[Variable]:
        """Breadth-first, one batch of Browse requests per level; cycles are walked once."""
        skip_standard = root == OBJECTS_FOLDER  # the Server object and other namespace-0 content
        seen = {root.to_string()}
        level: list[tuple[ua.NodeId, list[ua.QualifiedName]]] = [(root, root_path)]
        found: list[Variable] = []
        for _ in range(max(self.args.depth, 0)):
            children: list[tuple[ua.NodeId, list[ua.QualifiedName]]] = []
            size = self.session.nodes_per_browse
            for start in range(0, len(level), size):
                chunk = level[start : start + size]
                for (_, path), references in zip(
                    chunk, await self._browse([n for n, _ in chunk]), strict=True
                ):
                    for ref in references:
                        target = ref.NodeId
                        node_id = make_node_id(target.Identifier, target.NamespaceIndex, target.NodeIdType)
                        key = node_id.to_string()
                        if key in seen or (skip_standard and node_id.NamespaceIndex == 0):
                            continue
                        seen.add(key)
                        self.nodes += 1
                        child_path = [*path, ref.BrowseName]
                        if ref.NodeClass == ua.NodeClass.Variable:
                            self.variables += 1
                            if self._selected(child_path):
                                found.append(Variable(node_id, child_path))
                        else:
                            children.append((node_id, child_path))
                    self.progress()
                    if self.nodes >= self.args.max_nodes:
                        print(f"\nbrowse: stopped at --max-nodes {self.args.max_nodes}", file=sys.stderr)
                        return found
            level = children
            if not level:
                break
        return found

    def _selected(self, path: list[ua.QualifiedName]) -> bool:
        pattern = self.args.filter
        qualified = "".join(f"/{q.NamespaceIndex}:{escape_browse_name(q.Name)}" for q in path)
        plain = "".join(f"/{q.Name}" for q in path)
        return fnmatch.fnmatchcase(qualified, pattern) or fnmatch.fnmatchcase(plain, pattern)

    async def _browse(self, node_ids: Sequence[ua.NodeId]) -> list[list[Any]]:
        """The references of each node (continuation points followed)."""
        params = ua.BrowseParameters()
        params.RequestedMaxReferencesPerNode = _MAX_REFERENCES
        params.NodesToBrowse = [
            ua.BrowseDescription(
                NodeId=node_id,
                BrowseDirection=ua.BrowseDirection.Forward,
                ReferenceTypeId=_HIERARCHICAL,
                IncludeSubtypes=True,
                NodeClassMask=_MASK,
                ResultMask=ua.BrowseResultMask.All,
            )
            for node_id in node_ids
        ]
        results = await self.session.client.uaclient.browse(params)
        out: list[list[Any]] = []
        for result in results:
            references = list(result.References or [])
            point = result.ContinuationPoint
            while point:
                next_params = ua.BrowseNextParameters()
                next_params.ReleaseContinuationPoints = False
                next_params.ContinuationPoints = [point]
                (more,) = await self.session.client.uaclient.browse_next(next_params)
                references += more.References or []
                point = more.ContinuationPoint
            out.append(references)
        return out

    async def describe(self, variables: list[Variable]) -> None:
        """DataType, ValueRank, UserAccessLevel and Description of every variable, in batched Reads."""
        attributes = (
            AttributeIds.DataType,
            AttributeIds.ValueRank,
            AttributeIds.UserAccessLevel,
            AttributeIds.Description,
        )
        size = max(1, self.session.nodes_per_read // len(attributes))
        for start in range(0, len(variables), size):
            chunk = variables[start : start + size]
            params = ua.ReadParameters()
            params.NodesToRead = [
                ua.ReadValueId(NodeId=v.node_id, AttributeId=attr) for v in chunk for attr in attributes
            ]
            results = await self.session.client.uaclient.read(params)
            for index, variable in enumerate(chunk):
                data_type, rank, access, text = (
                    dv.Value.Value
                    if (dv.StatusCode is None or dv.StatusCode.is_good()) and dv.Value
                    else None
                    for dv in results[index * 4 : index * 4 + 4]
                )
                variable.data_type = data_type if isinstance(data_type, ua.NodeId) else None
                variable.value_rank = rank if isinstance(rank, int) else -1
                variable.access = access if isinstance(access, int) else 0
                variable.description = (getattr(text, "Text", None) or "").strip()

    async def types(self, variables: list[Variable]) -> dict[str, str]:
        """parklink type of every DataType in use; vendor types by walking up their supertypes."""
        result: dict[str, str] = {}
        for variable in variables:
            data_type = variable.data_type
            if data_type is None or data_type.to_string() in result:
                continue
            result[data_type.to_string()] = await self._type_of(data_type)
        return result

    async def _type_of(self, data_type: ua.NodeId) -> str:
        current = data_type
        for _ in range(16):  # supertype chains are short; guard against loops
            if current.NamespaceIndex == 0 and isinstance(current.Identifier, int):
                if current.Identifier in _BUILTIN:
                    return _BUILTIN[current.Identifier]
                if current.Identifier in (22, 23, 24, 25):  # Structure, DataValue, BaseDataType, Diagnostic
                    return "variant"
            params = ua.BrowseParameters()
            params.NodesToBrowse = [
                ua.BrowseDescription(
                    NodeId=current,
                    BrowseDirection=ua.BrowseDirection.Inverse,
                    ReferenceTypeId=_HAS_SUBTYPE,
                    IncludeSubtypes=False,
                    NodeClassMask=ua.NodeClass.DataType,
                    ResultMask=ua.BrowseResultMask.All,
                )
            ]
            (browsed,) = await self.session.client.uaclient.browse(params)
            if not browsed.References:
                return "variant"
            target = browsed.References[0].NodeId
            current = make_node_id(target.Identifier, target.NamespaceIndex, target.NodeIdType)
        return "variant"


def _address(node_id: ua.NodeId, namespaces: list[str]) -> str:
    """The node id as 'nsu=<uri>;<kind>=<id>' ('i=<n>' in namespace 0)."""
    text = node_id.to_string()  # 'ns=2;s=x', 'i=85', 'ns=3;g=…'
    if node_id.NamespaceIndex == 0:
        return text
    _, _, identifier = text.partition(";")
    uri = namespaces[node_id.NamespaceIndex] if node_id.NamespaceIndex < len(namespaces) else None
    return f"nsu={uri};{identifier}" if uri else text


def _snake(name: str) -> str:
    name = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name)
    name = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", name)
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


def signal_name(path: list[ua.QualifiedName], taken: set[str]) -> str:
    """A unique signal name (^[a-z][a-z0-9_]{0,62}$) from a browse path."""
    name = "_".join(part for part in (_snake(q.Name) for q in path) if part) or "signal"
    if not name[0].isalpha():
        name = "s_" + name
    if len(name) > 63:
        digest = hashlib.sha1(name.encode(), usedforsecurity=False).hexdigest()[:6]
        name = name[:56].rstrip("_") + "_" + digest
    unique, counter = name, 2
    while unique in taken:
        suffix = f"_{counter}"
        unique, counter = name[: 63 - len(suffix)] + suffix, counter + 1
    taken.add(unique)
    return unique


def _access(level: int) -> str:
    read, write = level & 0x01, level & 0x02
    return "read/write" if read and write else "write only" if write else "read" if read else "no access"


def render(
    args: argparse.Namespace,
    root_path: list[ua.QualifiedName],
    variables: list[Variable],
    namespaces: list[str],
    types: dict[str, str],
) -> str:
    """The YAML snippet (a comment header, then `asset_types:`)."""
    root = "".join(f"/{q.NamespaceIndex}:{escape_browse_name(q.Name)}" for q in root_path) or "/ (Objects)"
    host = urlparse(args.endpoint).hostname
    writable = sum(1 for v in variables if v.access & 0x02)
    used = sorted({v.node_id.NamespaceIndex for v in variables if v.node_id.NamespaceIndex})
    command = f"# parklink browse {args.endpoint} --depth {args.depth} --filter {args.filter!r}"
    stamp = f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC"
    lines = [
        command + (f" --root {args.root!r}" if args.root else ""),
        f"# {stamp}: {len(variables)} variables ({writable} writable) under {root}",
    ]
    lines += [f"#   ns={i}: {namespaces[i]}" for i in used if i < len(namespaces)]
    lines += [
        "# Paste under `asset_types:` (or merge), then add assets with `type: " + args.name + "`.",
        "# Writes need `writable: true` in a binding; structures and arrays are typed `variant`.",
        "asset_types:",
        f"  {args.name}:",
        f"    description: {json.dumps(f'OPC UA variables of {host} under {root}', ensure_ascii=False)}",
        "    signals:",
    ]
    if not variables:
        lines[-1] = "    signals: {}  # nothing matched: widen --filter or --depth"
    taken: set[str] = set()
    for variable in sorted(variables, key=lambda v: [(q.NamespaceIndex, q.Name) for q in v.path]):
        path = "".join(f"/{q.NamespaceIndex}:{escape_browse_name(q.Name)}" for q in variable.path)
        base = types.get(variable.data_type.to_string(), "variant") if variable.data_type else "variant"
        array = variable.value_rank not in (-1,)  # -1: scalar; everything else may be an array
        kind = "variant" if array else base
        type_note = f"array of {base}" if array else base
        comment = f"{path} · {type_note} · {_access(variable.access)}"
        name = signal_name(variable.path[len(root_path) :], taken)  # relative to the root
        lines.append(f"      {name}:  # {comment}")
        lines.append(f"        type: {kind}")
        if variable.description and variable.description != variable.path[-1].Name:
            lines.append(f"        description: {json.dumps(variable.description, ensure_ascii=False)}")
        lines.append(f"        binding: {{address: {json.dumps(_address(variable.node_id, namespaces))}}}")
    return "\n".join(lines)
