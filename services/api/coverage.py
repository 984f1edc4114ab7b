"""Coverage for city leaders: aggregate figures (no personal data, no login) and a page.

GET /coverage.json — per programme: the coverage snapshot the projector publishes (active
workers, workers awaiting budget, coverage at the headline month against the RPJPD target
and the 2045 goal, month by month, by OPD, category and kecamatan), plus the budget and the
sources of the city's figures. Every coverage figure is read from the ledger's coverage
summary (services/ledger/coverage.py), as the projector reads it.
GET /coverage      — the same as a page with charts, readable on a phone.
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
