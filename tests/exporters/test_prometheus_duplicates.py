"""No scrape of any endpoint carries two series with the same name and label set (Prometheus would
keep one and silently drop the other): park shift aggregates of sites in different shifts at once
differ by their `shift` label."""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from zoneinfo import ZoneInfo

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from exporters.prometheus.kpi_collector import KpiCollector, shift_name
from models.sample import good
from orchestrator.config import load_config
from orchestrator.demo import DEMO_PARK
from orchestrator.kpi.service import KpiService
from orchestrator.registry import builtin_kinds

# 15:00 in Berlin: Acme's sites are in their late shift, Bolt (Paris) and Corex (London) in "day".
NOW = datetime(2026, 3, 2, 15, 0, tzinfo=ZoneInfo("Europe/Berlin")).timestamp()


def scrape(collector: KpiCollector) -> str:
    registry = CollectorRegistry()
    registry.register(collector)
    return generate_latest(registry).decode()


def duplicates(text: str) -> list[tuple[str, tuple[tuple[str, str], ...]]]:
    seen = Counter(
        (sample.name, tuple(sorted(sample.labels.items())))
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    )
    return [key for key, n in seen.items() if n > 1]


def test_every_view_has_unique_series() -> None:
    park = load_config(DEMO_PARK, builtin_kinds()).park
    service = KpiService(park, None, clock=lambda: NOW)
    states = [s.index for s in park.signals if s.role == "state"]
    service.engine.feed([good(i, 3, NOW - 1800) for i in states])  # all running for half an hour
    service.update(NOW)
    shifts = {p.window_label for p in service.view.park if p.window_kind == "shift"}
    assert {shift_name(label) for label in shifts} == {"late", "day"}, shifts  # the case of the issue
    views = [KpiCollector(service, "full"), KpiCollector(service, "park")]
    views += [KpiCollector(service, "company", company) for company in park.companies]
    for view in views:
        text = scrape(view)
        assert "parklink_kpi_availability_ratio{" in text
        assert duplicates(text) == []
    park_text = scrape(KpiCollector(service, "park"))
    assert 'level="park"' in park_text and 'shift="late"' in park_text and 'shift="day"' in park_text


def test_shift_name_is_bounded_by_the_configured_names() -> None:
    assert shift_name("shift:early:2026-03-02") == "early"
    assert shift_name("shift:night-2:2026-03-02") == "night-2"
    assert shift_name("day:2026-03-02") == "" and shift_name("rolling:1h") == ""
    assert shift_name("hour:2026-03-02T06:00+01:00") == ""
