"""`parklink validate` on random and mutated YAML (hypothesis, 1,050 cases) never crashes.

Two sources of files:
- random documents: recursive dicts, lists and scalars (keys often the config's own, so that
  validation goes deep), random bytes and text, and documents built against the parser: deep
  nesting, aliases that expand exponentially or refer to themselves, tags, several documents;
- mutations of the real configs (examples/*.yaml; orchestrator/demo_park.yaml is the same file as
  examples/demo-park.yaml): delete a key or an item, change a value's type, duplicate a list entry,
  rename a key, replace an id with an invalid one, then maybe on the bytes: truncate at a random
  byte, insert tabs or garbage, duplicate or delete a line.

`orchestrator.cli.main(["validate", file])` runs in-process (fast). The property: no exception leaves
it; it returns 0 with "valid:" on stdout, or 1 with "<file>: N problem(s)" on stderr followed by one
line per problem naming the file (validate exits 1 for an invalid file; `main` exits 2 only for a
ConfigError of the other commands). Ten mutated files also go through the installed `parklink`
console script as processes: exit code 0 or 1, the file named, no traceback.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import io
import logging
import random
import re
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, Phase, given, note, settings
from hypothesis import strategies as st

from orchestrator.cli import main
from tests.conftest import Recorder

pytestmark = pytest.mark.timeout(180)

REPO = Path(__file__).resolve().parents[2]
RANDOM_CASES, MUTATED_CASES, PROCESSES = 450, 600, 10  # 1,050 in-process cases


def _sources() -> dict[str, str]:
    """The real configs, one per distinct content."""
    texts: dict[str, str] = {}
    for path in [*sorted((REPO / "examples").glob("*.yaml")), REPO / "orchestrator" / "demo_park.yaml"]:
        text = path.read_text(encoding="utf-8")
        if text not in texts.values():
            texts[str(path.relative_to(REPO))] = text
    return texts


SOURCES = _sources()
PARSED = {name: yaml.safe_load(text) for name, text in SOURCES.items()}

# ---- random documents -----------------------------------------------------------------------------

KEYS = [
    *("park", "companies", "asset_types", "database", "metrics", "kpi", "mqtt", "http", "id", "name"),
    *("sites", "areas", "lines", "assets", "connections", "kind", "host", "port", "endpoint", "signals"),
    *("binding", "type", "role", "address", "unit_id", "table", "timezone", "shifts", "params", "share"),
    *("parameters", "state_map", "url", "start", "end", "breaks", "windows", "kpis", "level", "unit"),
]
WORDS = [
    *("modbus", "opcua", "holding", "coil", "uint16", "float32", "state", "good_count", "Europe/Berlin"),
    *("UTC", "${HOME}", "${PARKLINK_NOT_SET}", "${X:-1}", "{unit}", "{nope}", "ns=2;s=x", "shift", "oee"),
    *("opc.tcp://127.0.0.1:4840/", "06:00", "25:99", "sqlite:///x.db", "demo_machine_state", "asset"),
]
scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=2**63, max_value=2**80)
    | st.floats()
    | st.text(max_size=20)
    | st.sampled_from(WORDS)
)
documents = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=8), children, max_size=6)
    ),
    max_leaves=40,
)


def _nested(depth: int, kind: int) -> str:
    if kind == 0:
        return "[" * depth + "]" * depth
    if kind == 1:
        return "{a: " * depth + "1" + "}" * depth
    return "".join("  " * i + "- \n" for i in range(depth))


def _alias_bomb(levels: int, width: int) -> str:
    lines = [f"a0: &a0 [{', '.join(['x'] * width)}]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * width)}]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


NASTY = [
    "a: &a [*a]\n",  # refers to itself
    "park: &p {id: x, more: *p}\n",
    "a: !!python/object/apply:os.system [echo hi]\n",
    "a: !!binary ZZZ\n",
    "a: !!timestamp nope\n",
    "a: !!set {x, y}\n",
    "a: !custom 1\n",
    "? [a, b]\n: 1\n",
    "---\npark: {id: a}\n---\npark: {id: b}\n",
    "base: &b {id: x}\npark:\n  <<: *b\n  <<: *b\n",
    "park: {id: x}\npark: {id: y}\n",
    "\ufeffpark: {id: x}\n",
    "park: {id: \udc80}\n".encode("utf-8", "surrogatepass").decode("utf-8", "replace"),
    "park:\n\tid: x\n",
    "%YAML 9.9\n---\na: 1\n",
    "a: *nowhere\n",
]


@st.composite
def random_files(draw: st.DrawFn) -> bytes:
    """A random document, dumped; or random bytes or text; or something built against the parser."""
    choice = draw(st.integers(0, 6))
    if choice <= 2:
        return yaml.safe_dump(draw(documents), allow_unicode=True, sort_keys=False).encode()
    if choice == 3:
        return draw(st.binary(max_size=300))
    if choice == 4:
        return draw(st.text(max_size=300)).encode("utf-8", "surrogatepass")
    if choice == 5:
        return _nested(
            draw(st.sampled_from([1, 10, 63, 64, 65, 200, 1000])), draw(st.integers(0, 2))
        ).encode()
    if draw(st.booleans()):  # well under the limit on expanded values (fast), or far over it
        return _alias_bomb(
            *draw(st.sampled_from([(2, 3), (3, 5), (4, 9), (9, 9), (12, 12), (30, 2)]))
        ).encode()
    return draw(st.sampled_from(NASTY)).encode("utf-8", "surrogatepass")


# ---- mutations of the real configs --------------------------------------------------------------------

KeyPath = tuple[str | int, ...]
BAD_IDS = ["", "UPPER", "with space", "ümlaut", "-lead", "a" * 300, "a/b", "1", "a.b", "x\ny"]
OTHER_VALUES = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats()
    | st.text(max_size=30)
    | st.lists(st.integers(), max_size=3)
    | st.dictionaries(st.text(max_size=5), st.integers(), max_size=3)
    | st.sampled_from(WORDS)
)


def paths_in(data: Any, prefix: KeyPath = ()) -> list[KeyPath]:
    """Every key path below `data` (mapping keys and list indexes)."""
    found: list[KeyPath] = []
    items: list[tuple[str | int, Any]] = []
    if isinstance(data, dict):
        items = list(data.items())
    elif isinstance(data, list):
        items = list(enumerate(data))
    for key, value in items:
        path = (*prefix, key)
        found.append(path)
        found.extend(paths_in(value, path))
    return found


def parent_of(data: Any, path: KeyPath) -> Any:
    for part in path[:-1]:
        data = data[part]
    return data


@dataclass
class Mutant:
    source: str
    steps: list[str]
    content: bytes


@st.composite
def mutants(draw: st.DrawFn) -> Mutant:
    source = draw(st.sampled_from(sorted(SOURCES)))
    data = copy.deepcopy(PARSED[source])
    steps: list[str] = []
    for op in draw(
        st.lists(st.sampled_from(["delete", "retype", "duplicate", "rename", "bad_id"]), max_size=3)
    ):
        paths = paths_in(data)
        if op == "bad_id":
            paths = [p for p in paths if p[-1] == "id"] or paths
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent, key = parent_of(data, path), path[-1]
        if op == "delete":
            del parent[key]
        elif op == "retype":
            parent[key] = draw(OTHER_VALUES)
        elif op == "duplicate" and isinstance(parent, list):
            parent.insert(int(key), copy.deepcopy(parent[int(key)]))
        elif op == "rename" and isinstance(parent, dict):
            new = draw(st.sampled_from(KEYS) | st.text(min_size=1, max_size=10) | st.just(f"{key}s"))
            parent[new] = parent.pop(key)
        elif op == "bad_id":
            parent[key] = draw(st.sampled_from(BAD_IDS))
        else:
            continue
        steps.append(f"{op} {'.'.join(map(str, path))}")
    content = (
        yaml.safe_dump(data, allow_unicode=True, sort_keys=False).encode()
        if steps
        else SOURCES[source].encode()
    )
    text_op = draw(
        st.sampled_from([None, None, "truncate", "garbage", "tab", "duplicate_line", "delete_line"])
    )
    if text_op is not None and content:
        at = draw(st.integers(0, len(content)))
        lines = content.split(b"\n")
        line = draw(st.integers(0, len(lines) - 1))
        if text_op == "truncate":
            content = content[:at]
        elif text_op == "garbage":
            content = content[:at] + draw(st.binary(min_size=1, max_size=20)) + content[at:]
        elif text_op == "tab":
            content = content[:at] + b"\t" + content[at:]
        elif text_op == "duplicate_line":
            content = b"\n".join([*lines[: line + 1], lines[line], *lines[line + 1 :]])
        else:
            content = b"\n".join(lines[:line] + lines[line + 1 :])
        steps.append(f"{text_op} at byte {at}, line {line + 1}")
    return Mutant(source, steps, content)


# ---- the property ------------------------------------------------------------------------------------

PROBLEMS = re.compile(r"^(?P<file>.+): (?P<n>\d+) problem\(s\)$")


@dataclass
class Tally:
    tried: int = 0
    valid: int = 0
    invalid: int = 0
    crashed: int = 0
    slowest: float = 0.0


def validate_in_process(path: Path, tally: Tally) -> None:
    """`parklink validate path` in this process; asserts the property, counts the outcome."""
    out, err = io.StringIO(), io.StringIO()
    tally.tried += 1
    started = time.perf_counter()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(["validate", str(path)])
    except BaseException:
        tally.crashed += 1
        raise
    tally.slowest = max(tally.slowest, time.perf_counter() - started)
    check_outcome(path, code, out.getvalue(), err.getvalue())
    tally.valid += code == 0
    tally.invalid += code == 1


def check_outcome(path: Path, code: int, out: str, err: str) -> None:
    assert "Traceback" not in err, err
    if code == 0:
        assert out.startswith(f"{path}: valid:"), out
        return
    assert code == 1, (code, err)
    first, *issues = err.rstrip("\n").split("\n")
    match = PROBLEMS.match(first)
    assert match and match["file"] == str(path), first
    assert len(issues) >= int(match["n"]) >= 1, err
    assert all(line.startswith(str(path)) for line in issues[: int(match["n"])]), err


@contextlib.contextmanager
def cli_logging() -> Iterator[None]:
    """main() sets the levels of some library loggers; put them back afterwards."""
    names = ["", "asyncua", "pymodbus", "apscheduler"]
    levels = {name: logging.getLogger(name).level for name in names}
    try:
        yield
    finally:
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)


FUZZ = settings(
    derandomize=True,
    database=None,
    deadline=None,
    phases=[Phase.explicit, Phase.generate, Phase.shrink],
    suppress_health_check=list(HealthCheck),
    report_multiple_bugs=False,
)


def test_validate_survives_random_documents(record: Recorder) -> None:
    tally = Tally()
    with tempfile.TemporaryDirectory() as folder, cli_logging():
        path = Path(folder) / "random.yaml"

        @settings(FUZZ, max_examples=RANDOM_CASES)
        @given(content=random_files())
        def one(content: bytes) -> None:
            note(repr(content[:300]))
            path.write_bytes(content)
            validate_in_process(path, tally)

        try:
            one()
        finally:
            record(
                "config fuzz: random YAML → parklink validate",
                tally.tried,
                tally.tried - tally.crashed,
                0,
                f"{tally.valid} valid, {tally.invalid} invalid; slowest {tally.slowest:.2f} s",
            )
    assert tally.tried >= RANDOM_CASES and tally.crashed == 0
    assert tally.invalid > RANDOM_CASES / 2


def test_validate_survives_mutated_configs(record: Recorder) -> None:
    tally = Tally()
    with tempfile.TemporaryDirectory() as folder, cli_logging():
        path = Path(folder) / "park.yaml"

        @settings(FUZZ, max_examples=MUTATED_CASES)
        @given(mutant=mutants())
        def one(mutant: Mutant) -> None:
            note(f"{mutant.source}: {mutant.steps}")
            path.write_bytes(mutant.content)
            validate_in_process(path, tally)

        try:
            one()
        finally:
            record(
                "config fuzz: mutated configs → parklink validate",
                tally.tried,
                tally.tried - tally.crashed,
                0,
                f"{tally.valid} still valid, {tally.invalid} invalid; slowest {tally.slowest:.2f} s",
            )
    assert tally.tried >= MUTATED_CASES and tally.crashed == 0
    assert tally.valid >= 10 and tally.invalid >= MUTATED_CASES / 2  # both outcomes were exercised


def sample_mutants(count: int) -> list[tuple[str, bytes]]:
    """Files for the process test: one of each kind of damage, from a fixed seed."""
    rng = random.Random(22)
    demo = SOURCES["examples/demo-park.yaml"].encode()
    gateway = SOURCES["examples/factory-gateway.yaml"].encode()
    cut = rng.randrange(len(demo))
    at = rng.randrange(len(gateway))
    retyped = copy.deepcopy(PARSED["examples/factory-gateway.yaml"])
    retyped["companies"][0]["connections"] = [1, 2]
    bad_id = copy.deepcopy(PARSED["examples/demo-park.yaml"])
    bad_id["companies"][0]["sites"][0]["id"] = "Not An Id"
    files = [
        ("valid", demo),
        ("truncated", demo[:cut]),
        ("garbage bytes", gateway[:at] + bytes(rng.randrange(256) for _ in range(16)) + gateway[at:]),
        ("tab", gateway.replace(b"\n  ", b"\n\t", 1)),
        ("retyped", yaml.safe_dump(retyped).encode()),
        ("bad id", yaml.safe_dump(bad_id).encode()),
        ("deep", _nested(3000, 0).encode()),
        ("alias bomb", _alias_bomb(9, 9).encode()),
        ("self alias", NASTY[0].encode()),
        ("control character", demo.replace(b"park:", b"park:\x07", 1)),
    ]
    return files[:count]


async def _run(executable: list[str], path: Path, limit: asyncio.Semaphore) -> tuple[int, str, str]:
    async with limit:
        proc = await asyncio.create_subprocess_exec(
            *executable, "validate", str(path), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        try:
            out, err = await asyncio.wait_for(proc.communicate(), 60)
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        assert proc.returncode is not None
        return proc.returncode, out.decode(), err.decode()


async def test_validate_as_a_process(tmp_path: Path, record: Recorder) -> None:
    """The same property through the `parklink` console script, 2 processes at a time."""
    script = Path(sys.executable).with_name("parklink")
    executable = [str(script)] if script.exists() else [sys.executable, "-m", "orchestrator.cli"]
    files = []
    for n, (what, content) in enumerate(sample_mutants(PROCESSES)):
        path = tmp_path / f"{n}-{what.replace(' ', '-')}.yaml"
        path.write_bytes(content)
        files.append(path)
    limit = asyncio.Semaphore(2)
    results = await asyncio.gather(*(_run(executable, path, limit) for path in files))
    fine = 0
    try:
        for path, (code, out, err) in zip(files, results, strict=True):
            check_outcome(path, code, out, err)
            fine += 1
    finally:
        record(
            "config fuzz: parklink validate as a process", len(files), fine, 0, "exit 0 or 1, no traceback"
        )
    codes = [code for code, _, _ in results]
    assert codes[0] == 0 and all(code == 1 for code in codes[1:]), codes


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"\xff\xfe park", "random.yaml:1: (top level): not UTF-8 text: byte 0xff at offset 0"),
        (
            b"park: {id: a}\n\x07\n",
            "random.yaml:2: (top level): not valid YAML: character #x0007 is not allowed",
        ),
        (b"[" * 500 + b"]" * 500, "(top level): not valid YAML: nested more than 64 levels deep"),
        (b"a: &a [*a]\n", "random.yaml:1: (top level): an alias refers to a value that contains it"),
        (_alias_bomb(9, 9).encode(), "(top level): more than 1,000,000 values"),
        (
            b"park: {id: x}\nkpi:\n  b: 2026-13-45\n",
            "random.yaml:3: kpi.b: not valid YAML: '2026-13-45' is not a valid",
        ),
        (b"a: !!bool maybe\n", "random.yaml:1: a: not valid YAML: 'maybe' is not a valid bool"),
        (None, "random.yaml: (top level): cannot read: Is a directory"),
    ],
    ids=["not-utf8", "control-char", "deep", "self-alias", "alias-bomb", "bad-date", "bad-bool", "directory"],
)
def test_what_used_to_crash_validate(tmp_path: Path, content: bytes | None, expected: str) -> None:
    """Inputs the fuzzing found crashing (or, for the alias bomb, hanging) `parklink validate`: now a
    problem naming the file, the line where known, and the key path."""
    path = tmp_path / "random.yaml"
    if content is None:
        path.mkdir()
    else:
        path.write_bytes(content)
    out, err = io.StringIO(), io.StringIO()
    started = time.perf_counter()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), cli_logging():
        code = main(["validate", str(path)])
    assert time.perf_counter() - started < 10
    check_outcome(path, code, out.getvalue(), err.getvalue())
    assert code == 1 and expected in err.getvalue(), err.getvalue()
