"""What an edge tells the hub, and how: the wire format of the edge/hub roles (UNS JSON family).

Topics, all under the edge's own company, so a broker ACL of "company X writes
`<prefix>/<park>/X/#`" covers them and the hub reads `<prefix>/<park>/+/_edge/#`:
- `…/<company>/_edge/model`: the company's part of the unified model (sites, lines, assets, signals)
  and its sharing policies. Retained, and re-sent at every connect (a broker restart without
  persistence loses retained messages; births repair that, as in Sparkplug).
- `…/<company>/_edge/status`: `{"online": true}` at every connect, retained; the same topic carries
  the MQTT will `{"online": false}`, so a killed edge is marked by the broker itself.
- `…/<company>/_edge/results`: KPI results the company's policies share, with their ISO 22400
  elements (the hub sums elements, then divides: never a mean of ratios). One message per update
  (`kind: current`) or per batch of closed windows (`kind: closed`), through the store-and-forward
  queue, so closed windows survive broker outages and edge restarts.

Signal values travel on the ordinary UNS signal topics. `_edge` starts with '_', which no parklink
id can, so it never collides with a site id.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any, Literal

from pydantic import Field

from exporters.mqtt.uns import JsonValue, Payload
from models.assets import DataType, KpiRole, SharePolicy, Shift, Strict
from models.park import Park
from orchestrator.kpi.elements import Elements
from orchestrator.kpi.formulas import compute
from orchestrator.kpi.results import ScopedResult
from orchestrator.kpi.rollup import Level

EDGE_LEVEL = "_edge"
VERSION = 1


def edge_topic(prefix: str, park: str, company: str, what: Literal["model", "status", "results"]) -> str:
    """The topic of one edge message of `company`."""
    return f"{prefix}/{park}/{company}/{EDGE_LEVEL}/{what}"


def hub_topics(prefix: str, park: str) -> list[str]:
    """What a hub subscribes to: every edge message and every signal of the park."""
    return [f"{prefix}/{park}/#"]


# -- the model ----------------------------------------------------------------------------------
class SiteModel(Strict):
    id: str
    timezone: str
    shifts: list[Shift] = Field(default_factory=list)


class AssetModel(Strict):
    site: str
    area: str = ""
    line: str
    asset: str
    name: str = ""
    type: str
    ideal_cycle_time: float | None = None


class SignalModel(Strict):
    asset: str  # the asset's path
    name: str
    role: KpiRole | None = None
    unit: str = ""
    data_type: DataType


class CompanyModel(Strict):
    """One company's part of the unified model, as its edge announces it."""

    version: int = VERSION
    park: str
    company: str
    name: str = ""
    sites: list[SiteModel]
    assets: list[AssetModel]
    signals: list[SignalModel]
    share: list[SharePolicy] = Field(default_factory=list)
    client_id: str = ""
    sparkplug_node: str | None = None  # "<group>/<edge node>" when the edge also speaks Sparkplug
    msg_id: str | None = None  # added by the publisher (uns.encode)


def company_model(
    park: Park, company: str, *, client_id: str = "", sparkplug_node: str | None = None
) -> Payload:
    """The model message of one company of the edge's park (JSON object)."""
    sites = [
        SiteModel(id=site, timezone=zone, shifts=park.shifts.get((c, site), []))
        for (c, site), zone in park.sites.items()
        if c == company
    ]
    assets = [
        AssetModel(
            site=a.site,
            area=a.area,
            line=a.line,
            asset=a.asset,
            name=a.name,
            type=a.type,
            ideal_cycle_time=a.ideal_cycle_time,
        )
        for a in park.assets
        if a.company == company and not a.retired
    ]
    signals = [
        SignalModel(asset=s.asset.path, name=s.name, role=s.role, unit=s.unit, data_type=s.data_type)
        for s in park.signals
        if s.asset.company == company and not s.asset.retired
    ]
    model = CompanyModel(
        park=park.id,
        company=company,
        name=park.companies.get(company, ""),
        sites=sites,
        assets=assets,
        signals=signals,
        share=park.share.get(company, []),
        client_id=client_id,
        sparkplug_node=sparkplug_node,
    )
    dumped: Payload = model.model_dump(mode="json")
    return dumped


# -- results ------------------------------------------------------------------------------------
def result_payload(r: ScopedResult) -> dict[str, JsonValue]:
    """One result: where, when, and its elements (the KPIs are recomputed from them at the hub)."""
    elements: dict[str, JsonValue] = {k: v for k, v in asdict(r.result.elements).items() if v}
    return {
        "level": r.level,
        "scope": r.scope,
        "names": list(r.names),
        "window": r.window_kind,
        "label": r.window_label,
        "start": r.start,
        "end": r.end,
        "elements": elements,
    }


def results_message(
    kind: Literal["current", "closed"], company: str, now: float, results: list[ScopedResult]
) -> Payload:
    """The results message of one company for one update or one close."""
    return {
        "version": VERSION,
        "kind": kind,
        "company": company,
        "now": now,
        "results": [result_payload(r) for r in results],
    }


class ResultModel(Strict):
    level: Level
    scope: str
    names: tuple[str, str, str, str, str]
    window: str
    label: str
    start: float
    end: float
    elements: dict[str, int | float] = Field(default_factory=dict)

    def scoped(self) -> ScopedResult:
        elements = Elements.from_dict(self.elements)
        return ScopedResult(
            self.level,
            self.scope,
            self.names,
            self.window,
            self.label,
            self.start,
            self.end,
            compute(elements),
        )


class ResultsMessage(Strict):
    """A results message as the hub reads it (validated: a malformed one is refused, not half-used)."""

    version: int = VERSION
    kind: Literal["current", "closed"]
    company: str
    now: float
    results: list[ResultModel]
    msg_id: str | None = None


def parse_model(data: Any) -> CompanyModel:
    """A model message → CompanyModel; pydantic ValidationError when it is not one."""
    return CompanyModel.model_validate(data)


def parse_results(data: Any) -> ResultsMessage:
    """A results message → ResultsMessage; pydantic ValidationError when it is not one."""
    return ResultsMessage.model_validate(data)
