"""Asset model persistence on SQLite and on the real PostgreSQL: idempotent sync, retirement."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine
from sqlmodel import Session, select

from models.store import create_tables, sync_park
from models.tables import EquipmentRow, SignalRow
from orchestrator.config import load_config
from orchestrator.registry import builtin_kinds

DEMO = Path(__file__).resolve().parents[2] / "examples" / "demo-park.yaml"


def rows(engine: Engine) -> tuple[dict[str, EquipmentRow], dict[str, SignalRow]]:
    with Session(engine) as session:
        equipment = {r.path: r for r in session.exec(select(EquipmentRow)).all()}
        signals = {r.path: r for r in session.exec(select(SignalRow)).all()}
    return equipment, signals


def test_sync_is_idempotent_and_retires_removed_assets(engine: Engine, tmp_path: Path) -> None:
    kinds = builtin_kinds()
    park = load_config(DEMO, kinds).park
    create_tables(engine)
    first = sync_park(engine, park)
    equipment, signals = rows(engine)
    assert first.added == len(equipment) + len(signals)
    assert len(signals) == len(park.signals)
    assert equipment["riverside/acme/north/machining/line-1/mill-2"].parent_path == (
        "riverside/acme/north/machining/line-1"
    )
    assert equipment["riverside/acme"].level == "company"

    again = sync_park(engine, park)
    assert (again.added, again.updated, again.retired) == (0, 0, 0)
    assert len(rows(engine)[0]) == len(equipment)

    smaller = tmp_path / "smaller.yaml"
    smaller.write_text(
        DEMO.read_text().replace(
            "- {id: mill-3, type: cnc_mill, connection: north-opcua, params: {machine: Mill3}}", ""
        )
    )
    third = sync_park(engine, load_config(smaller, kinds).park)
    equipment, signals = rows(engine)
    mill3 = "riverside/acme/north/machining/line-1/mill-3"
    assert equipment[mill3].retired
    assert signals[f"{mill3}/good_count"].retired
    assert third.retired == 1 + 8  # the asset and its eight signals; nothing deleted
    assert not equipment["riverside/acme/north/machining/line-1/mill-2"].retired

    sync_park(engine, park)  # put back: un-retired, same row
    equipment_after, _ = rows(engine)
    assert not equipment_after[mill3].retired
    assert equipment_after[mill3].id == equipment[mill3].id
