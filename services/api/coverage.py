"""Coverage for city leaders: aggregate figures (no personal data, no login) and a page.

GET /coverage.json — per programme: active workers, coverage against the RPJPD target and
the 2045 goal, month by month, by category and kecamatan, budget used and remaining.
GET /coverage      — the same as a page with charts, readable on a phone.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from importlib import resources
from typing import Any

import asyncpg
from fastapi import APIRouter, HTTPException
from fastapi.responses import HTMLResponse

from services.domain.coverage import (
    coverage_ratio,
    workers_coverable,
    workers_to_reach,
    yearly_cost,
)
from services.domain.programme import Programme

ACTIVE = "status IN ('booked', 'billed', 'paid')"
CACHE_SECONDS = 5.0


async def programme_coverage(
    connection: asyncpg.Connection, programme: Programme
) -> dict[str, Any]:
    """The aggregate coverage figures of one programme, read from the finance views."""
    pid = programme.id
    active = await connection.fetchval(
        "SELECT count(DISTINCT nik) FROM finance.contributions "
        f"WHERE programme = $1 AND {ACTIVE}", pid)
    months = await connection.fetch(
        f"""SELECT period, count(DISTINCT nik) AS workers, sum(amount_idr)::bigint AS amount_idr
              FROM finance.contributions WHERE programme = $1 AND {ACTIVE}
             GROUP BY period ORDER BY period""", pid)
    by: dict[str, dict[str, int]] = {}
    for dimension in ("category", "kecamatan", "opd_code"):
        rows = await connection.fetch(
            f"""SELECT {dimension} AS key, count(DISTINCT nik) AS workers
                  FROM finance.contributions WHERE programme = $1 AND {ACTIVE}
                 GROUP BY 1 ORDER BY 2 DESC, 1""", pid)
        by[dimension] = {r["key"]: r["workers"] for r in rows}
    budget_rows = await connection.fetch(
        """SELECT funding_source, fiscal_year, allocated_idr, booked_idr, paid_idr, held_idr,
                  remaining_idr FROM finance.budget_utilisation WHERE programme = $1""", pid)
    cover = programme.coverage
    outside, workforce = cover.registered_outside_programme, cover.workforce
    monthly = programme.premium.monthly_idr
    remaining = sum(r["remaining_idr"] for r in budget_rows)
    return {
        "programme": pid,
        "name": programme.name,
        "city": programme.city,
        "active_workers": active,
        "registered_outside_programme": outside,
        "workforce": workforce,
        "coverage_ratio": round(coverage_ratio(outside, active, workforce), 6),
        "target_ratio": cover.target_ratio,
        "goal_ratio": cover.goal_ratio,
        "goal_year": cover.goal_year,
        "workers_to_target": workers_to_reach(cover.target_ratio, outside, active, workforce),
        "workers_to_goal": workers_to_reach(cover.goal_ratio, outside, active, workforce),
        "monthly_premium_idr": monthly,
        "next_year_cost_idr": yearly_cost(active, monthly),
        "workers_coverable_by_remaining_budget": workers_coverable(remaining, monthly),
        "months": [
            {"period": r["period"], "workers": r["workers"], "amount_idr": r["amount_idr"],
             "coverage_ratio": round(coverage_ratio(outside, r["workers"], workforce), 6)}
            for r in months
        ],
        "by_category": by["category"],
        "by_kecamatan": by["kecamatan"],
        "by_opd": by["opd_code"],
        "budget": [dict(r) for r in budget_rows],
    }


def coverage_router(
    pool: Callable[[], asyncpg.Pool], programmes: Callable[[], dict[str, Programme]]
) -> APIRouter:
    router = APIRouter(tags=["coverage"])
    cache: dict[str, tuple[float, list[dict[str, Any]]]] = {}

    @router.get("/coverage.json")
    async def coverage_json() -> list[dict[str, Any]]:
        """Aggregate coverage of every programme (no personal data; no token needed)."""
        cached = cache.get("all")
        if cached and time.monotonic() - cached[0] < CACHE_SECONDS:
            return cached[1]
        async with pool().acquire() as connection:
            figures = [await programme_coverage(connection, p)
                       for p in sorted(programmes().values(), key=lambda p: p.id)]
        cache["all"] = (time.monotonic(), figures)
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


