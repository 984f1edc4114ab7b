"""Coverage for city leaders: aggregate figures (no personal data, no login) and a page.

GET /coverage.json — per programme: the coverage snapshot the projector publishes (active
workers, workers awaiting budget, coverage at the headline month against the RPJPD target
and the 2045 goal, month by month, by OPD, category and kecamatan), plus the budget and the
sources of the city's figures. Every coverage figure is read from the ledger's coverage
summary (services/ledger/coverage.py), as the projector reads it.
GET /coverage/today.json — the city today, in the programmes' time zone, across every
programme, and the months ahead with where cover ends (the cliff).
GET /coverage      — the same as a page with charts, readable on a phone: today first.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from importlib import resources
from typing import Any

import asyncpg
from fastapi import APIRouter, HTTPException
from fastapi.responses import HTMLResponse

from services.domain.coverage import snapshots, workers_coverable
from services.domain.programme import Programme
from services.ledger.coverage import changes, read_coverage

CACHE_SECONDS = 5.0  # budget figures may be this old; coverage figures never are


async def budget_rows(connection: asyncpg.Connection, programme: str) -> list[dict[str, Any]]:
    rows = await connection.fetch(
        """SELECT funding_source, fiscal_year, allocated_idr, booked_idr, paid_idr, held_idr,
                  remaining_idr FROM finance.budget_utilisation WHERE programme = $1""",
        programme)
    return [dict(r) for r in rows]


async def coverage_figures(
    connection: asyncpg.Connection, programmes: dict[str, Programme]
) -> list[dict[str, Any]]:
    """Every programme's coverage figures, read from the ledger."""
    ledger = await read_coverage(connection)
    figures = []
    for snapshot in snapshots(programmes, ledger, datetime.now(UTC)):
        programme = programmes[snapshot.programme]
        cover = programme.coverage
        budget = await budget_rows(connection, programme.id)
        monthly = programme.premium.monthly_idr
        remaining = sum(r["remaining_idr"] for r in budget)
        figures.append({
            **snapshot.model_dump(mode="json"),
            "name": programme.name,
            "city": programme.city,
            "baseline_as_of": cover.baseline_as_of,
            "baseline_source": cover.baseline_source,
            "workforce_source": cover.workforce_source,
            "workforce_rough": cover.workforce_rough,
            "workforce_rough_source": cover.workforce_rough_source,
            "monthly_premium_idr": monthly,
            "workers_coverable_by_remaining_budget": workers_coverable(remaining, monthly),
            "budget": budget,
        })
    return figures


MONTHS_AHEAD = 12  # the months the city view shows after the current one

# Per month from the current one: distinct workers any programme covers, those whose months
# wait (held), and the workers whose cover ends just before it with no programme continuing.
_AHEAD = """
WITH months AS (
    SELECT to_char($1::date + make_interval(months => i), 'YYYY-MM') AS period
      FROM generate_series(0, $2::int) AS i
), covered AS (
    SELECT period, count(DISTINCT nik) AS workers FROM ledger.live_contributions
     WHERE period BETWEEN (SELECT min(period) FROM months) AND (SELECT max(period) FROM months)
     GROUP BY period
), waiting AS (
    SELECT period, count(DISTINCT nik) AS workers FROM ledger.held_contributions h
     WHERE period BETWEEN (SELECT min(period) FROM months) AND (SELECT max(period) FROM months)
       AND NOT EXISTS (SELECT 1 FROM ledger.held_resolutions r
                        WHERE r.contribution_id = h.contribution_id)
     GROUP BY period
), ending AS (
    SELECT to_char(to_date(covered_through, 'YYYY-MM') + interval '1 month', 'YYYY-MM')
               AS period, count(*) AS workers
      FROM finance.cover_expiry WHERE renewed_to IS NULL GROUP BY 1
)
SELECT m.period, coalesce(c.workers, 0) AS covered_workers,
       coalesce(w.workers, 0) AS waiting_workers, coalesce(e.workers, 0) AS cover_ends
  FROM months m
  LEFT JOIN covered c USING (period) LEFT JOIN waiting w USING (period)
  LEFT JOIN ending e USING (period)
 ORDER BY m.period"""


async def city_today(connection: asyncpg.Connection, programmes: dict[str, Programme],
                     now: datetime) -> dict[str, Any]:
    """The city at today's month (in the programmes' time zone) and the months ahead: the
    workers any programme covers, the coverage ratio, where cover ends with no renewal (the
    cliff) and how many more a renewal waiting for budget would keep."""
    if not programmes:
        return {}
    city = next(iter(programmes.values()))
    today = city.today(now)
    cover = city.coverage
    rows = await connection.fetch(_AHEAD, today.replace(day=1), MONTHS_AHEAD)
    months = [{
        **dict(r),
        "coverage_ratio": (cover.baseline_members + r["covered_workers"]) / cover.workforce,
        "with_waiting_ratio": (cover.baseline_members + r["covered_workers"]
                               + r["waiting_workers"]) / cover.workforce,
    } for r in rows]
    return {
        "city": city.city, "today": today.isoformat(), "timezone": city.timezone,
        "period": months[0]["period"], "covered_workers": months[0]["covered_workers"],
        "members": cover.baseline_members + months[0]["covered_workers"],
        "coverage_ratio": months[0]["coverage_ratio"], "target_ratio": cover.target_ratio,
        "baseline_members": cover.baseline_members, "workforce": cover.workforce,
        "months": months,
    }


def coverage_router(
    pool: Callable[[], asyncpg.Pool], programmes: Callable[[], dict[str, Programme]]
) -> APIRouter:
    router = APIRouter(tags=["coverage"])
    cache: dict[str, tuple[int, float, list[dict[str, Any]]]] = {}

    @router.get("/coverage.json")
    async def coverage_json() -> list[dict[str, Any]]:
        """Aggregate coverage of every programme (no personal data; no token needed)."""
        async with pool().acquire() as connection:
            marker = await changes(connection)
            cached = cache.get("all")
            if cached and cached[0] == marker and time.monotonic() - cached[1] < CACHE_SECONDS:
                return cached[2]
            figures = await coverage_figures(connection, programmes())
        cache["all"] = (marker, time.monotonic(), figures)
        return figures

    @router.get("/coverage/today.json")
    async def coverage_today() -> dict[str, Any]:
        """The city today (the programmes' time zone) and the months ahead, across every
        programme: covered workers, coverage, cover ending without renewal, waiting workers
        (no personal data; no token needed)."""
        async with pool().acquire() as connection:
            marker = await changes(connection)
            cached = cache.get("today")
            if cached and cached[0] == marker and time.monotonic() - cached[1] < CACHE_SECONDS:
                return cached[2][0]
            figures = await city_today(connection, programmes(), datetime.now(UTC))
        cache["today"] = (marker, time.monotonic(), [figures])
        return figures

    @router.get("/coverage", response_class=HTMLResponse)
    async def coverage_page() -> HTMLResponse:
        """The coverage page: charts of the figures above."""
        return HTMLResponse(page_html())

    return router


def page_html() -> str:
    text = (resources.files("services.api") / "static" / "coverage.html").read_text("utf-8")
    if not text:
        raise HTTPException(500, detail="coverage page missing from the installation")
    return text
