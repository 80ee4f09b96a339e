"""YAML loading that remembers where every key stands, so config errors can name the line."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

KeyPath = tuple[str | int, ...]


@dataclass(frozen=True)
class Located:
    """A parsed YAML document with the line (1-based) of every key path in it."""

    data: Any
    lines: dict[KeyPath, int]

    def line_of(self, path: KeyPath) -> int | None:
        """The line of the deepest part of `path` that exists in the file."""
        for end in range(len(path), -1, -1):
            line = self.lines.get(path[:end])
            if line is not None:
                return line
        return None


class YamlError(ValueError):
    """A file that is not YAML, or has a duplicate key; carries the line."""

    def __init__(self, message: str, line: int | None, path: KeyPath = ()) -> None:
        super().__init__(message)
        self.line = line
        self.path = path


# A park config nests about a dozen levels and holds thousands of values; these bounds only stop
# documents built to exhaust the parser: deep nesting, and aliases that expand exponentially
# ("billion laughs") or refer to themselves.
MAX_DEPTH = 64
MAX_NODES = 1_000_000  # counting an aliased node each time it is used


def load(text: str) -> Located:
    """Parse one YAML document, keeping key lines and refusing duplicate keys."""
    loader: yaml.SafeLoader | None = None
    try:
        loader = yaml.SafeLoader(text)  # checks the characters first
        node = loader.get_single_node()
        if node is None:
            return Located(None, {})
        _check_size(node)
        lines: dict[KeyPath, int] = {}
        _walk(node, (), lines)
        try:
            data = loader.construct_document(node)
        except yaml.YAMLError:
            raise
        except Exception:  # PyYAML's scalar constructors raise plain errors, e.g. for 2026-13-45
            raise _unreadable_scalar(node) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        raise YamlError(f"not valid YAML: {exc.problem or exc}", line) from None
    except yaml.reader.ReaderError as exc:  # a character YAML does not allow (NUL, most control codes)
        line = text.count("\n", 0, exc.position) + 1
        raise YamlError(f"not valid YAML: character #x{exc.character:04x} is not allowed", line) from None
    except yaml.YAMLError as exc:  # none known besides the two above; a message rather than a traceback
        raise YamlError(f"not valid YAML: {exc}", None) from None
    except RecursionError:  # the parser recurses once per level, before _check_size can count them
        raise YamlError(f"not valid YAML: nested more than {MAX_DEPTH} levels deep", None) from None
    finally:
        if loader is not None:
            loader.dispose()
    return Located(data, lines)


def load_file(path: Path) -> Located:
    """`load` for a file; raises YamlError for a file that is not UTF-8 text, OSError if unreadable."""
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise YamlError(f"not UTF-8 text: byte 0x{raw[exc.start]:02x} at offset {exc.start}", line) from None
    return load(text)


def _check_size(root: yaml.Node) -> None:
    """Refuse a document nested deeper than MAX_DEPTH, with more than MAX_NODES values, or with an
    alias inside the value it names. Linear in the nodes as written: an aliased node is sized once."""
    sizes: dict[int, tuple[int, int]] = {}  # id(node) -> (values with aliases expanded, depth)
    open_nodes: set[int] = set()  # on the path from the root to the node being sized
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        key = id(node)
        children = _children(node)
        if children_done:
            open_nodes.discard(key)
            values = 1 + sum(sizes[id(child)][0] for child in children)
            depth = 1 + max((sizes[id(child)][1] for child in children), default=0)
            line = node.start_mark.line + 1
            if depth > MAX_DEPTH:
                raise YamlError(f"nested more than {MAX_DEPTH} levels deep", line)
            if values > MAX_NODES:
                raise YamlError(f"more than {MAX_NODES:,} values (an alias counts each time it's used)", line)
            sizes[key] = (values, depth)
        elif key in open_nodes:
            raise YamlError("an alias refers to a value that contains it", node.start_mark.line + 1)
        elif key not in sizes:
            open_nodes.add(key)
            stack.append((node, True))
            stack.extend((child, False) for child in children if id(child) not in sizes)


def _unreadable_scalar(root: yaml.Node) -> YamlError:
    """The error for the first scalar PyYAML cannot construct (a date like 2026-13-45, !!int abc)."""
    stack: list[tuple[yaml.Node, KeyPath]] = [(root, ())]
    seen: set[int] = set()
    while stack:
        node, path = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, yaml.ScalarNode):
            try:
                yaml.SafeLoader("").construct_object(node)
            except Exception as exc:
                tag = node.tag.rsplit(":", 1)[-1]
                message = f"not valid YAML: {node.value!r} is not a valid {tag}: {exc}"
                return YamlError(message, node.start_mark.line + 1, path)
        elif isinstance(node, yaml.MappingNode):
            for key, value in reversed(node.value):
                stack += [(value, (*path, str(key.value))), (key, path)]
        elif isinstance(node, yaml.SequenceNode):
            stack += [(item, (*path, i)) for i, item in reversed(list(enumerate(node.value)))]
    return YamlError("not valid YAML: a value cannot be read", None)


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [child for pair in node.value for child in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def _walk(node: yaml.Node, path: KeyPath, lines: dict[KeyPath, int]) -> None:
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            key = str(key_node.value)
            if key == "<<":  # merge key: the merged keys keep the lines of their anchor
                continue
            if key in seen:
                raise YamlError(f"duplicate key {key!r}", key_node.start_mark.line + 1, (*path, key))
            seen.add(key)
            lines[(*path, key)] = key_node.start_mark.line + 1
            _walk(value_node, (*path, key), lines)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            lines[(*path, i)] = item.start_mark.line + 1
            _walk(item, (*path, i), lines)


_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def expand_env(data: Any, path: KeyPath = (), missing: list[tuple[KeyPath, str]] | None = None) -> Any:
    """Replace `${NAME}` / `${NAME:-default}` in strings with environment values (for secrets).

    Unset names without a default are appended to `missing` with their key path.
    """
    if isinstance(data, dict):
        return {k: expand_env(v, (*path, k), missing) for k, v in data.items()}
    if isinstance(data, list):
        return [expand_env(v, (*path, i), missing) for i, v in enumerate(data)]
    if isinstance(data, str) and "${" in data:

        def substitute(match: re.Match[str]) -> str:
            value = os.environ.get(match.group(1), match.group(2))
            if value is None:
                if missing is not None:
                    missing.append((path, match.group(1)))
                return ""
            return value

        return _ENV.sub(substitute, data)
    return data


_PLAIN_KEY = re.compile(r"[A-Za-z0-9_${}:-]+")


def render_path(path: KeyPath) -> str:
    """companies[1].sites[0].lines[2] style."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
            continue
        key = str(part)
        if not _PLAIN_KEY.fullmatch(key):
            key = repr(key)  # a key with spaces, dots or line breaks: quoted, one line
        out += f".{key}" if out else key
    return out
