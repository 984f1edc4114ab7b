"""The coverage page as a person sees it: loaded in headless Chromium from the running API."""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
import tempfile
import time
from html import unescape

import asyncpg
import pytest

from schemas.events import TOPIC_REGISTRATIONS
from services.runtime.settings import Settings
from services.runtime.stack import ServiceProcesses, http_json
from tests.support.kafka import publish
from tests.support.workers import as_message, registration

pytestmark = pytest.mark.e2e

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def render(url: str, *, width: int = 390, height: int = 2400,
           screenshot: str | None = None) -> str:
    """The DOM after the page's scripts ran (phone-sized window)."""
    assert CHROMIUM is not None
    with tempfile.TemporaryDirectory() as profile:
        command = [
            CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
            "--no-first-run", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", f"--user-data-dir={profile}", f"--window-size={width},{height}",
            "--virtual-time-budget=15000",
        ]
        command += [f"--screenshot={screenshot}"] if screenshot else ["--dump-dom"]
        result = subprocess.run([*command, url], capture_output=True, text=True, timeout=120,
                                check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def text_of(dom: str, element_id: str) -> str:
    match = re.search(rf'id="{element_id}"[^>]*>([^<]*)<', dom)
    assert match, f"#{element_id} not on the page"
    return unescape(match.group(1)).strip()


def id_number(text: str) -> int:
    """'25.808' (Indonesian grouping) or 'Rp5.300.000.000' as an integer."""
    return int(re.sub(r"[^0-9]", "", text))


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (make tools)")
async def test_the_coverage_page_shows_the_ledger_figures(
    stack: ServiceProcesses, settings: Settings, db: asyncpg.Pool
) -> None:
    events = [registration(opd_code="DISHUB") for _ in range(12)]
    await publish(settings, TOPIC_REGISTRATIONS, [as_message(e) for e in events])
    niks = [e.worker.nik for e in events]
    deadline = time.monotonic() + 90
    while await db.fetchval("SELECT count(*) FROM ledger.contributions WHERE nik = ANY($1)",
                            niks) < 12 * 12:
        assert time.monotonic() < deadline, "registrations were not booked"
        await asyncio.sleep(0.3)
    active = await db.fetchval(
        "SELECT count(DISTINCT nik) FROM finance.contributions WHERE programme = 'malang-2025' "
        "AND status IN ('booked', 'billed', 'paid')")
    remaining = await db.fetchval(
        "SELECT sum(remaining_idr) FROM finance.budget_utilisation "
        "WHERE programme = 'malang-2025'")
    base = f"http://{settings.http_host}:{settings.api_port}"
    await asyncio.sleep(6)  # past the API's five-second cache of the figures

    dom = await asyncio.to_thread(render, f"{base}/coverage")

    assert 'data-loaded="true"' in dom
    assert id_number(text_of(dom, "malang-2025-active-workers")) == active
    assert text_of(dom, "malang-2025-target-ratio") == "41,23%"
    covered = await db.fetchval(  # distinct workers any programme covers in 2025-12
        "SELECT count(DISTINCT nik) FROM finance.contributions WHERE period = '2025-12' "
        "AND status IN ('booked', 'billed', 'paid')")
    ratio = (178_611 + covered) / 490_700
    assert id_number(text_of(dom, "malang-2025-members")) == 178_611 + covered
    assert text_of(dom, "malang-2025-coverage-ratio") == f"{ratio * 100:.2f}%".replace(".", ",")
    assert id_number(text_of(dom, "malang-2025-budget-remaining")) == remaining
    assert 'data-key="ojek_online"' in dom and "Ojek online" in dom
    assert 'data-key="Klojen"' in dom
    assert dom.count("data-period=") >= 12  # one bar per covered month
    figures = http_json(f"{base}/coverage.json")
    assert isinstance(figures, list)
    malang = next(f for f in figures if f["programme"] == "malang-2025")
    assert malang["active_workers"] == active
    assert "nik" not in str(figures).lower().replace("niks", "")


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (make tools)")
async def test_the_page_says_so_when_the_figures_cannot_be_loaded(settings: Settings) -> None:
    # a page served from a file has no API behind it
    from services.api.coverage import page_html

    with tempfile.NamedTemporaryFile("w", suffix=".html", delete=False) as page:
        page.write(page_html())
    dom = await asyncio.to_thread(render, f"file://{page.name}")
    assert 'data-loaded="error"' in dom
    assert "Data cakupan tidak dapat dimuat" in dom


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (make tools)")
async def test_the_page_leads_with_the_city_today_and_the_months_ahead(
    stack: ServiceProcesses, settings: Settings, db: asyncpg.Pool
) -> None:
    from services.domain.programme import load_programmes

    malang = load_programmes(settings.programmes_dir)["malang-2025"]
    today = malang.today()
    period = f"{today.year:04d}-{today.month:02d}"
    base = f"http://{settings.http_host}:{settings.api_port}"
    await asyncio.sleep(6)  # past the API's five-second cache of the figures

    city = http_json(f"{base}/coverage/today.json")
    dom = await asyncio.to_thread(render, f"{base}/coverage")

    covered = await db.fetchval(
        "SELECT count(DISTINCT nik) FROM ledger.live_contributions WHERE period = $1", period)
    assert isinstance(city, dict)
    assert (city["today"], city["period"], city["covered_workers"]) == (
        today.isoformat(), period, covered)
    assert [m["period"] for m in city["months"]][0] == period and len(city["months"]) == 13
    assert 'data-loaded="true"' in dom
    assert dom.index('id="today"') < dom.index("data-programme=")  # today leads
    assert id_number(text_of(dom, "city-covered-workers")) == covered
    assert f'data-period="{period}" data-covered="{covered}"' in dom
    ratio = (178_611 + covered) / 490_700
    assert text_of(dom, "city-coverage-ratio") == f"{ratio * 100:.2f}%".replace(".", ",")
    assert "Hari ini, " in dom and "(WIB)" in dom
