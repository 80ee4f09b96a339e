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


def load(text: str) -> Located:
    """Parse one YAML document, keeping key lines and refusing duplicate keys."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return Located(None, {})
        lines: dict[KeyPath, int] = {}
        _walk(node, (), lines)
        data = loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        raise YamlError(f"not valid YAML: {exc.problem or exc}", line) from None
    finally:
        loader.dispose()
    return Located(data, lines)


def load_file(path: Path) -> Located:
    """`load` for a file."""
    return load(path.read_text(encoding="utf-8"))


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


def render_path(path: KeyPath) -> str:
    """companies[1].sites[0].lines[2] style."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out
