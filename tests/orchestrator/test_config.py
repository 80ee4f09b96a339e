"""Config loading: every mistake reported with file, line and key path; templates resolved."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
import yaml

from orchestrator.cli import main
from orchestrator.config import ConfigError, load_config
from orchestrator.registry import builtin_kinds

REPO = Path(__file__).resolve().parents[2]
KINDS = builtin_kinds()

GOOD = """\
park: {id: testpark}
asset_types:
  press:
    ideal_cycle_time: 2.0
    parameters: {unit: 1}
    signals:
      state: {role: state, type: uint16, binding: {table: holding, address: 0, unit_id: "{unit}"}}
      good_count: {role: good_count, type: uint32, binding: {table: holding, address: 10, unit_id: "{unit}"}}
  mill:
    signals:
      state: {role: state, type: int32, binding: {address: "ns=2;s={machine}.State"}}
companies:
  - id: acme
    connections:
      gw: {kind: modbus, host: 127.0.0.1, port: 1502}
      ua: {kind: opcua, endpoint: "opc.tcp://127.0.0.1:4840/"}
    sites:
      - id: north
        timezone: Europe/Berlin
        lines:
          - id: l1
            assets:
              - {id: p1, type: press, connection: gw}
              - {id: p2, type: press, connection: gw, params: {unit: 2}}
              - {id: m1, type: mill, connection: ua, params: {machine: Mill1}}
  - id: bolt
    sites: []
"""


def write(tmp_path: Path, text: str, name: str = "park.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def issues_of(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_config(path, KINDS)
    return [str(issue) for issue in caught.value.issues]


def test_good_config_resolves_templates(tmp_path: Path) -> None:
    loaded = load_config(write(tmp_path, GOOD), KINDS)
    park = loaded.park
    assert [a.path for a in park.assets] == ["acme/north/l1/p1", "acme/north/l1/p2", "acme/north/l1/m1"]
    assert [s.index for s in park.signals] == list(range(5))
    units = [s.binding.unit_id for s in park.signals if s.asset.connection == "gw"]
    assert units == [1, 1, 2, 2]  # type default, then the instance's own
    assert park.signals[4].binding.address == "ns=2;s=Mill1.State"
    assert park.assets[0].ideal_cycle_time == 2.0
    assert set(park.companies) == {"acme", "bolt"}


def test_three_mistakes_all_reported_with_line_and_path(tmp_path: Path) -> None:
    text = GOOD.replace("port: 1502}", "port: 1502, prot: 3}")  # 1: unknown key
    text = text.replace("connection: gw, params: {unit: 2}", "connection: gateway, params: {unit: 2}")  # 2
    text = text.replace("address: 10, unit_id", "address: 10, count: 1, unit_id")  # 3: count vs uint32
    problems = issues_of(write(tmp_path, text))
    assert len(problems) >= 3, problems
    joined = "\n".join(problems)
    assert (
        "park.yaml:15: companies[0].connections.gw.prot: unknown key 'prot'; did you mean 'port'?" in joined
    )
    assert (
        "park.yaml:24: companies[0].sites[0].lines[0].assets[1].connection: no connection 'gateway'" in joined
    )
    assert "companies[0].sites[0].lines[0].assets[0].signals.good_count.count" in joined or (
        "companies[0].sites[0].lines[0].assets[0].signals.good_count" in joined
    )


def test_reference_and_uniqueness_errors(tmp_path: Path) -> None:
    text = GOOD.replace("{id: p2, type: press", "{id: p1, type: presss")
    text = text.replace("timezone: Europe/Berlin", "timezone: Mars/Olympus")
    joined = "\n".join(issues_of(write(tmp_path, text)))
    assert "assets[1].id: id 'p1' is already used by companies[0].sites[0].lines[0].assets[0]" in joined
    assert "assets[1].type: unknown asset type 'presss' (asset_types: mill, press)" in joined
    assert "sites[0].timezone: Value error, unknown IANA time zone 'Mars/Olympus'" in joined


def test_missing_placeholder_and_bad_node_id(tmp_path: Path) -> None:
    text = GOOD.replace(", params: {machine: Mill1}", "").replace('"ns=2;s={machine}', '"{machine}')
    joined = "\n".join(issues_of(write(tmp_path, text)))
    assert "assets[2].signals.state.address: placeholder {machine} has no value" in joined
    text = GOOD.replace('"ns=2;s={machine}.State"', '"ns=two;s=x"')
    joined = "\n".join(issues_of(write(tmp_path, text)))
    assert "assets[2].signals.state.address" in joined


def test_yaml_errors_have_lines(tmp_path: Path) -> None:
    assert issues_of(write(tmp_path, "park: {id: x}\npark: {id: y}\ncompanies: []\n")) == [
        f"{tmp_path}/park.yaml:2: park: duplicate key 'park'"
    ]
    (problem,) = issues_of(write(tmp_path, "park: [\n  id: x\n"))
    assert problem.startswith(f"{tmp_path}/park.yaml:3: (top level): not valid YAML")


def test_secrets_from_environment_never_in_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = GOOD.replace(
        'endpoint: "opc.tcp://127.0.0.1:4840/"}',
        'endpoint: "opc.tcp://127.0.0.1:4840/", username: op, password: "${UA_PASSWORD}"}',
    )
    path = write(tmp_path, text)
    joined = "\n".join(issues_of(path))
    assert "companies[0].connections.ua.password: environment variable UA_PASSWORD is not set" in joined
    monkeypatch.setenv("UA_PASSWORD", "s3cret-value")
    loaded = load_config(path, KINDS)
    settings = next(c.settings for c in loaded.park.connections if c.id == "ua")
    assert settings.password.get_secret_value() == "s3cret-value"
    assert "s3cret-value" not in repr(settings)
    broken = write(tmp_path, text.replace("username: op", "username: op, timeout: [1]"), "broken.yaml")
    assert all("s3cret-value" not in problem for problem in issues_of(broken))


def test_database_url_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, GOOD)
    assert load_config(path, KINDS).database_url == "sqlite:///parklink.db"
    monkeypatch.setenv("PARKLINK_DATABASE_URL", "postgresql://postgres@127.0.0.1/test")
    assert load_config(path, KINDS).database_url == "postgresql://postgres@127.0.0.1/test"


@pytest.mark.parametrize("example", sorted((REPO / "examples").glob("*.yaml")), ids=lambda p: p.name)
def test_examples_stay_valid(example: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(example)]) == 0
    assert "valid:" in capsys.readouterr().out


def test_demo_park_size() -> None:
    park = load_config(REPO / "examples" / "demo-park.yaml", KINDS).park
    assert len(park.companies) >= 3
    assert len(park.sites) >= 4
    assert len(park.assets) >= 12
    assert {c.kind for c in park.connections} == {"opcua", "modbus"}


def test_cli_validate_exit_codes_and_schema(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = write(tmp_path, GOOD.replace("port: 1502}", "port: 99999}"))
    assert main(["validate", str(bad)]) == 1
    err = capsys.readouterr().err
    assert "companies[0].connections.gw.port" in err and "less than or equal to 65535" in err
    assert main(["schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert "companies" in schema["properties"]
    assert "opcua" in json.dumps(schema) and "modbus" in json.dumps(schema)


def test_validate_explain_shows_the_modbus_plan(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", "--explain", str(REPO / "examples" / "demo-park.yaml")]) == 0
    out = capsys.readouterr().out
    assert "acme/south-gateway (modbus, 18 signals)" in out
    assert "6 request(s) per poll for 18 binding(s) on 3 unit(s)" in out
    assert "#1 unit 1 FC3 holding 0..30" in out


def test_bindings_checked_against_their_connection(tmp_path: Path) -> None:
    text = GOOD.replace("port: 1502}", "port: 1502, poll_groups: {fast: 0.2}}")
    text = text.replace("address: 10, unit_id", "address: 10, poll_group: slow, unit_id")
    text = text.replace(
        'binding: {address: "ns=2;s={machine}.State"}',
        'binding: {address: "ns=2;s={machine}.State", group: fast}',
    )
    joined = "\n".join(issues_of(write(tmp_path, text)))
    assert (
        "assets[0].signals.good_count.poll_group: connection has no poll group 'slow' (poll_groups: fast)"
        in joined
    )
    assert "assets[2].signals.state.group: connection has no group 'fast' (groups: none declared)" in joined


def test_odd_keys_are_quoted_so_every_problem_stays_on_one_line(tmp_path: Path) -> None:
    """Found by the config fuzzer: a key holding a line break split its problem over two lines."""
    path = tmp_path / "park.yaml"
    path.write_text("? '\n\n  '\n: null\n'a b.c': 1\n", encoding="utf-8")
    issues = issues_of(path)
    assert all("\n" not in issue for issue in issues)
    assert any("'\\n'" in issue for issue in issues) and any("'a b.c'" in issue for issue in issues)


def test_a_signal_type_of_the_wrong_kind_is_a_problem_not_a_crash(tmp_path: Path) -> None:
    """Found by the config fuzzer: a list as a signal's `type` crashed the Modbus binding check."""
    data = yaml.safe_load(Path("examples/factory-gateway.yaml").read_text(encoding="utf-8"))
    data["asset_types"]["filler"]["signals"]["state"]["type"] = ["uint16"]
    path = tmp_path / "park.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    issues = issues_of(path)
    assert any("asset_types.filler.signals.state.type" in issue for issue in issues), issues


def test_an_id_of_the_wrong_kind_is_a_problem_not_a_crash(tmp_path: Path) -> None:
    """Found by the config fuzzer: a list as a site id crashed the duplicate-id check."""
    data = yaml.safe_load(Path("examples/factory-gateway.yaml").read_text(encoding="utf-8"))
    data["companies"][0]["sites"][0]["id"] = ["north"]
    data["asset_types"][7] = {"signals": {}}  # a key that is not a text: listed, not a crash
    path = tmp_path / "park.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    issues = issues_of(path)
    assert any("companies[0].sites[0].id" in issue for issue in issues), issues
