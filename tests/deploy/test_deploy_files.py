"""The deployment files stay true to the code.

- `deploy/grafana/parklink-park.json`, `deploy/prometheus/*.yml` and the provisioning YAML parse
  and have the expected shape;
- every `parklink_*` metric name used in a PromQL expression (dashboard targets and variables,
  alert rules) exists, exactly (suffixes `_total` etc. included), in a real scrape: the runtime's
  `/metrics` with a fake connector kind plus the park view (`KpiCollector(…, "park")`, which alone
  carries the benchmarks); the `mqtt:` section, and so the `parklink_mqtt_*` names, is included
  when Mosquitto answers on 127.0.0.1:1883 (skipped otherwise, a failure under `CI=true`);
- label names used in selectors, `by (…)` clauses and legends exist on the metrics involved;
- the example parklink config validates and the systemd unit has what the guide promises;
- `promtool check rules` / `promtool check config` (Debian: `apt-get install prometheus`, which
  .ci/run does): skipped with a reason when promtool is absent, a failure under `CI=true`.
"""

from __future__ import annotations

import asyncio
import json
import re
import shlex
import shutil
import subprocess
import textwrap
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from exporters.prometheus.kpi_collector import KpiCollector
from orchestrator.cli import _parser
from orchestrator.config import ConfigError, check_role, load_config
from orchestrator.registry import builtin_kinds
from orchestrator.runtime import Runtime
from tests.conftest import IN_CI, free_port, need_server, reachable
from tests.fakes import FAKE_KIND

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
DASHBOARD = DEPLOY / "grafana" / "parklink-park.json"
ALERTS = DEPLOY / "prometheus" / "alerts.yml"
PROMETHEUS = DEPLOY / "prometheus" / "prometheus.yml"
GUIDE = ROOT / "docs" / "DEPLOYMENT.md"

# Two companies sharing everything at asset level (benchmark_min_companies: 2), so the park view
# has park aggregates and benchmarks; a failing connection, so `up` has a 0. The fake device counts
# a part per poll (20 a second): a PRU of 0.1 ms keeps its results plausible, else the KPI guard
# flags them suspect and keeps them, and so the benchmarks, out of the park view.
CONFIG = """\
park: {id: p}
database: {url: "sqlite:///DB"}
kpi: {update_interval: 0.5, benchmark_min_companies: 2}
MQTT
asset_types:
  m:
    ideal_cycle_time: 0.0001
    signals:
      state: {role: state, binding: {address: s}}
      good_count: {role: good_count, binding: {address: g}}
companies:
  - id: acme
    connections: {dev: {kind: fake}}
    share: [{kpis: all, level: asset, windows: [rolling_hour, hour, day, shift]}]
    sites:
      - id: s
        shifts: [{name: all, start: "00:00", end: "00:00"}]
        lines: [{id: l, assets: [{id: a1, type: m, connection: dev}]}]
  - id: bolt
    connections: {dev: {kind: fake}, broken: {kind: fake, fail: true}}
    share: [{kpis: all, level: asset, windows: [rolling_hour, hour, day, shift]}]
    sites:
      - id: s
        shifts: [{name: all, start: "00:00", end: "00:00"}]
        lines: [{id: l, assets: [{id: b1, type: m, connection: dev}, {id: b2, type: m, connection: broken}]}]
"""
MQTT_SECTION = "mqtt: {topic_prefix: deploytest, retain: false, store: {path: QUEUE}}"

METRIC = re.compile(r"\bparklink_[a-z0-9_]+")
QUOTED = re.compile(r'"(?:[^"\\]|\\.)*"')
SELECTOR = re.compile(r"\b(parklink_[a-z0-9_]+)\s*\{([^}]*)\}")
MATCHER = re.compile(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)")
GROUPING = re.compile(r"\b(?:by|without)\s*\(([^)]*)\)")
LEGEND = re.compile(r"\{\{\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\}\}")
# Labels Prometheus adds to every series of a target; never part of parklink's exposition.
TARGET_LABELS = {"job", "instance", "park"}
# Labels the brief requires to be checked wherever they are used.
KEY_LABELS = {"company", "level", "window", "connection", "kind"}


# ---------------------------------------------------------------- the expressions in the files


def _dashboard() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return data


def _alert_rules() -> list[dict[str, Any]]:
    data = yaml.safe_load(ALERTS.read_text(encoding="utf-8"))
    return [rule for group in data["groups"] for rule in group["rules"]]


def _panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels", []))


def _expressions() -> list[tuple[str, str, str]]:
    """(where, PromQL, legend) of every expression of the dashboard and the alert rules."""
    found: list[tuple[str, str, str]] = []
    dashboard = _dashboard()
    for panel in _panels(dashboard["panels"]):
        for target in panel.get("targets", []):
            found.append((f"panel {panel['title']!r}", target["expr"], target.get("legendFormat", "")))
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            query = variable["query"]
            found.append(
                (f"variable {variable['name']}", query["query"] if isinstance(query, dict) else query, "")
            )
    for rule in _alert_rules():
        found.append((f"alert {rule['alert']}", rule["expr"], ""))
    return found


# ---------------------------------------------------------------- a real scrape


async def _fetch(url: str) -> str:
    def get() -> str:
        with urllib.request.urlopen(url, timeout=5) as response:
            return str(response.read().decode())

    return await asyncio.to_thread(get)


async def _scrape(tmp: Path, with_mqtt: bool) -> tuple[str, str]:
    """The runtime's full /metrics and the park view, from a running park of fake devices."""
    text = textwrap.dedent(CONFIG).replace("MQTT", MQTT_SECTION if with_mqtt else "")
    text = text.replace("DB", str(tmp / "p.db")).replace("QUEUE", str(tmp / "queue.sqlite"))
    (tmp / "park.yaml").write_text(text)
    kinds = {"fake": FAKE_KIND}
    runtime = Runtime(
        load_config(tmp / "park.yaml", kinds), kinds, metrics_port=free_port(), http_port=free_port()
    )
    await runtime.start()
    try:
        await asyncio.sleep(1.5)
        for link in runtime.links:  # the fake connector measures no round trip; a real one does
            link.health.last_rtt = 0.004
        runtime.kpi.update()
        assert runtime.metrics is not None
        full = await _fetch(f"http://127.0.0.1:{runtime.metrics.port}/metrics")
        registry = CollectorRegistry()
        registry.register(KpiCollector(runtime.kpi, "park"))
        park = generate_latest(registry).decode()
    finally:
        await runtime.stop()
    return full, park


def _exposed(*texts: str) -> dict[str, set[str]]:
    """Every sample name in the exposition (with its suffix) → the label names it carries."""
    names: dict[str, set[str]] = {}
    for text in texts:
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                names.setdefault(sample.name, set()).update(sample.labels)
    return names


@pytest.fixture(scope="module")
def exposed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, set[str]]:
    with_mqtt = reachable("127.0.0.1", 1883)
    full, park = asyncio.run(_scrape(tmp_path_factory.mktemp("deploy"), with_mqtt))
    names = _exposed(full, park)
    assert "parklink_connection_up" in names and "parklink_park_benchmark" in names, sorted(names)
    assert ("parklink_mqtt_queued_messages" in names) == with_mqtt
    return names


# ---------------------------------------------------------------- the tests


def test_files_parse_and_have_their_shape() -> None:
    dashboard = _dashboard()
    assert dashboard["schemaVersion"] >= 39
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert {"datasource", "company", "window"} <= set(variables)
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    ids = [p["id"] for p in _panels(dashboard["panels"])]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    for panel in _panels(dashboard["panels"]):
        if panel["type"] != "row":
            assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
            assert panel["targets"], panel["title"]

    rules = _alert_rules()
    assert len({r["alert"] for r in rules}) == len(rules), "alert names must be unique"
    for rule in rules:
        assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}, rule["alert"]
        assert rule["labels"]["severity"] in {"critical", "warning", "info"}, rule["alert"]
        assert {"summary", "description"} <= set(rule["annotations"]), rule["alert"]

    prometheus = yaml.safe_load(PROMETHEUS.read_text(encoding="utf-8"))
    assert prometheus["rule_files"] == ["alerts.yml"]
    jobs = {job["job_name"]: job for job in prometheus["scrape_configs"]}
    assert all(name.startswith("parklink") for name in jobs)  # ParklinkTargetDown: up{job=~"parklink.*"}
    assert jobs["parklink"]["static_configs"][0]["targets"] == ["127.0.0.1:9108"]
    assert jobs["parklink-park"]["metrics_path"] == "/metrics/park"
    assert jobs["parklink-park"]["authorization"]["type"] == "Bearer"

    for path in (DEPLOY / "grafana" / "provisioning").rglob("*.yml"):
        assert yaml.safe_load(path.read_text(encoding="utf-8"))["apiVersion"] == 1, path


def test_the_brief_alerts_are_there() -> None:
    exprs = {r["alert"]: r["expr"] for r in _alert_rules()}
    fors = {r["alert"]: r.get("for") for r in _alert_rules()}
    assert (
        exprs["ParklinkConnectionDown"] == "parklink_connection_up == 0"
        and fors["ParklinkConnectionDown"] == "2m"
    )
    assert "parklink_connection_reconnects_total" in exprs["ParklinkConnectionFlapping"]
    assert "parklink_connection_read_errors_total" in exprs["ParklinkReadErrorsRising"]
    assert "parklink_kpi_coverage_ratio" in exprs["ParklinkKpiCoverageLow"]
    assert "< 0.8" in exprs["ParklinkKpiCoverageLow"]
    assert "deriv(parklink_mqtt_queued_messages" in exprs["ParklinkStoreAndForwardGrowing"]
    assert exprs["ParklinkStoreAndForwardDropping"] == "increase(parklink_mqtt_dropped_total[10m]) > 0"
    assert exprs["ParklinkTargetDown"] == 'up{job=~"parklink.*"} == 0'


def test_every_metric_name_exists_in_a_real_scrape(exposed: dict[str, set[str]]) -> None:
    if "parklink_mqtt_queued_messages" not in exposed:
        need_server("Mosquitto", "127.0.0.1", 1883)  # skips here (fails under CI=true): mqtt names unchecked
    missing = []
    for where, expr, _ in _expressions():
        for name in METRIC.findall(QUOTED.sub('""', expr)):
            if name not in exposed:
                missing.append(f"{where}: {name}")
    assert not missing, "metric names not in the exposition:\n" + "\n".join(missing)


def test_the_non_mqtt_metric_names_exist_even_without_a_broker(exposed: dict[str, set[str]]) -> None:
    missing = [
        f"{where}: {name}"
        for where, expr, _ in _expressions()
        for name in METRIC.findall(QUOTED.sub('""', expr))
        if not name.startswith("parklink_mqtt_") and name not in exposed
    ]
    assert not missing, "metric names not in the exposition:\n" + "\n".join(missing)


def test_label_names_exist_on_the_metrics(exposed: dict[str, set[str]]) -> None:
    problems = []
    for where, expr, legend in _expressions():
        bare = QUOTED.sub('""', expr)
        metrics = [m for m in METRIC.findall(bare) if m in exposed]
        if not metrics:
            continue
        for name, matchers in SELECTOR.findall(expr):
            for label in MATCHER.findall(QUOTED.sub('""', matchers)):
                if label not in TARGET_LABELS and name in exposed and label not in exposed[name]:
                    problems.append(f"{where}: {name} has no label {label!r}")
        union = set().union(*(exposed[m] for m in metrics)) | TARGET_LABELS
        grouped = [
            label.strip() for group in GROUPING.findall(bare) for label in group.split(",") if label.strip()
        ]
        for label in grouped + LEGEND.findall(legend):
            if label not in union:
                problems.append(f"{where}: label {label!r} is on none of {metrics}")
    assert not problems, "\n".join(problems)
    used = {label for _, expr, _ in _expressions() for label in MATCHER.findall(QUOTED.sub('""', expr))}
    used |= {
        label.strip()
        for _, expr, _ in _expressions()
        for g in GROUPING.findall(expr)
        for label in g.split(",")
    }
    used |= {label for _, _, legend in _expressions() for label in LEGEND.findall(legend)}
    assert used >= KEY_LABELS, KEY_LABELS - used


def test_the_example_config_validates(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ACME_OPCUA_PASSWORD", "secret")
    monkeypatch.setenv("PARKLINK_MQTT_PASSWORD", "secret")
    monkeypatch.delenv("PARKLINK_DATABASE_URL", raising=False)
    loaded = load_config(DEPLOY / "parklink" / "acme.yaml", builtin_kinds())
    assert loaded.mqtt is not None and loaded.mqtt.store.path.is_absolute()
    assert loaded.config.metrics.host == "127.0.0.1" and loaded.http.host == "127.0.0.1"
    check_role(loaded, "edge")


def test_the_hub_config_validates_for_its_role(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PARKLINK_MQTT_PASSWORD", "secret")
    monkeypatch.delenv("PARKLINK_DATABASE_URL", raising=False)
    loaded = load_config(DEPLOY / "parklink" / "hub.yaml", builtin_kinds())
    check_role(loaded, "hub")
    assert loaded.mqtt is not None and loaded.mqtt.clean_start is False and loaded.mqtt.client_id
    assert loaded.database_url.startswith("postgresql://")
    assert loaded.hub.companies == ["acme", "bolt", "corex"]
    with pytest.raises(ConfigError, match="no companies: nothing to connect"):
        check_role(loaded, "all")  # a hub's config run as an all-in-one says what to do instead


def test_the_systemd_unit_and_the_guide_match_the_cli() -> None:
    """Every `parklink …` line of the guide's sh blocks parses with the real CLI parser."""
    unit = (DEPLOY / "systemd" / "parklink.service").read_text(encoding="utf-8")
    assert "Restart=on-failure" in unit and "KillSignal=SIGTERM" in unit
    assert re.search(r"^ExecStart=\S+/parklink run \S+$", unit, re.M)
    guide = GUIDE.read_text(encoding="utf-8")
    parser = _parser()
    lines = [
        line.split(" #")[0].strip()
        for block in re.findall(r"```sh\n(.*?)```", guide, re.S)
        for line in block.splitlines()
    ]
    commands = [line for line in lines if re.match(r"^(\S*/)?parklink ", line)]
    assert len(commands) >= 5, commands
    for command in commands:
        argv = shlex.split(command)[1:]
        try:
            parser.parse_args(argv)
        except SystemExit:
            pytest.fail(f"the guide documents a command the CLI rejects: {command}")


def test_promtool_accepts_the_rules_and_the_config(tmp_path: Path) -> None:
    if shutil.which("promtool") is None:
        reason = "promtool is absent (apt-get install prometheus)"
        if IN_CI:
            pytest.fail(f"{reason}, and CI=true requires it (.ci/run installs it)")
        pytest.skip(reason=reason)
    rules = subprocess.run(["promtool", "check", "rules", str(ALERTS)], capture_output=True, text=True)
    assert rules.returncode == 0, rules.stdout + rules.stderr
    # promtool checks that credentials files exist: point them at empty files of our own.
    config = PROMETHEUS.read_text(encoding="utf-8").replace("/etc/prometheus/", f"{tmp_path}/")
    for name in re.findall(rf"{re.escape(str(tmp_path))}/(\S+)", config):
        (tmp_path / name).write_text("plk_example\n")
    (tmp_path / "prometheus.yml").write_text(config)
    shutil.copy(ALERTS, tmp_path / "alerts.yml")
    checked = subprocess.run(
        ["promtool", "check", "config", str(tmp_path / "prometheus.yml")], capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
