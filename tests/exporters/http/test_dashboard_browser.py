"""The dashboard in a real headless browser (Debian's chromium driven by playwright).

The app runs under uvicorn on a free port in this loop; a park token logs in through the form. The
page must show ≥ 3 companies' shared KPIs, draw its charts, keep unshared KPIs out, fit a phone
screen and request nothing from elsewhere. Screenshots go to artifacts/ and docs/ (for the README).
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from exporters.http import HttpServer, create_token, serve
from tests.conftest import IN_CI
from tests.exporters.http.helpers import CANARY, build_runtime, seed

CHROMIUM = os.environ.get("PARKLINK_CHROMIUM", "/usr/bin/chromium")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ROOT = Path(__file__).resolve().parents[3]


def need_chromium() -> None:
    """Skip without chromium or playwright, except in CI where their absence is a failure."""
    missing = [
        what
        for what, ok in (
            (f"chromium at {CHROMIUM} (apt-get install chromium)", Path(CHROMIUM).exists()),
            ("the playwright package", importlib.util.find_spec("playwright") is not None),
        )
        if not ok
    ]
    if not missing:
        return
    message = "browser test needs " + " and ".join(missing)
    if IN_CI:
        pytest.fail(f"{message}, and CI=true requires it")
    pytest.skip(reason=message)


@pytest.fixture
async def served(tmp_path: Path, sqlite_db: Any) -> AsyncIterator[tuple[HttpServer, dict[str, str]]]:
    runtime = build_runtime(tmp_path, min_companies=2)
    seed(runtime, sqlite_db)
    tokens = {"park": create_token(sqlite_db, "park"), "acme": create_token(sqlite_db, "viewer", "acme")}
    server = await serve(runtime, "127.0.0.1", 0)
    try:
        yield server, tokens
    finally:
        await server.stop()


async def test_park_operator_dashboard_in_chromium(served: tuple[HttpServer, dict[str, str]]) -> None:
    need_chromium()
    from playwright.async_api import async_playwright

    server, tokens = served
    base = f"http://127.0.0.1:{server.port}"
    requested: list[str] = []
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            page = await browser.new_page(viewport={"width": 1280, "height": 900})
            page.on("request", lambda request: requested.append(request.url))
            await page.goto(f"{base}/dashboard")
            assert page.url == f"{base}/dashboard/login"
            await page.fill("#token", tokens["park"])
            await page.click("button[type=submit]")
            await page.wait_for_url(f"{base}/dashboard/park")

            rows = page.locator("#companies tbody tr")
            shown: dict[str, dict[str, str]] = {}
            for i in range(await rows.count()):
                row = rows.nth(i)
                name = (await row.locator("th").inner_text()).strip()
                cells = row.locator("td[data-kpi]")
                shown[name] = {
                    (await cells.nth(j).get_attribute("data-kpi") or ""): (
                        await cells.nth(j).inner_text()
                    ).strip()
                    for j in range(await cells.count())
                }
            with_values = [n for n, kpis in shown.items() if any(v.endswith("%") for v in kpis.values())]
            assert len(with_values) >= 3, shown
            assert shown["Corex Co"]["oee"].endswith("%")
            assert shown["Corex Co"]["availability"] == "not shared"  # corex shares only OEE
            assert all(v == "not shared" for v in shown["Dune Co"].values())  # dune shares nothing

            charts = page.locator("svg.chart")
            assert await charts.count() == 4
            lines = page.locator("svg.chart polyline.series")
            assert await lines.count() >= 3
            points = await lines.first.get_attribute("points")
            assert points and len(points.split()) >= 2
            box = await lines.first.bounding_box()
            assert box is not None and box["width"] > 50  # drawn across the plot, not collapsed

            text = await page.content()
            assert not any(str(v) in text for v in CANARY.values())  # no raw signal values
            (ROOT / "artifacts").mkdir(exist_ok=True)
            shot = ROOT / "artifacts" / "dashboard.png"
            await page.screenshot(path=str(shot), full_page=True)
            if os.environ.get("PARKLINK_UPDATE_DOCS") == "1":  # refresh the README's picture on demand
                shutil.copyfile(shot, ROOT / "docs" / "dashboard.png")

            for path in ("/dashboard/benchmarks?window=hour", "/dashboard/health"):
                await page.goto(base + path)
                assert await page.locator("main h1").count() == 1
            assert await page.locator("tr.down").count() == 1  # dune's connection, with its since-time
            down_row = await page.locator("tr.down").inner_text()
            assert "dune" in down_row and re.search(r"\(\d+ (s|min)\)", down_row), down_row  # since when

            await page.set_viewport_size({"width": 390, "height": 844})  # a phone
            await page.goto(f"{base}/dashboard/park")
            overflow = await page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
            assert overflow <= 1, f"page wider than a phone screen by {overflow}px"
            await page.screenshot(path=str(ROOT / "artifacts" / "dashboard-phone.png"), full_page=True)

            company = await browser.new_page()
            await company.goto(f"{base}/dashboard/login")
            await company.fill("#token", tokens["acme"])
            await company.click("button[type=submit]")
            await company.wait_for_url(f"{base}/dashboard/company/acme")
            body = await company.content()
            assert "acme-m1" in body and "bolt" not in body
        finally:
            await browser.close()
    assert requested and all(url.startswith(base + "/") for url in requested), requested
