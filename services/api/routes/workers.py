"""An OPD's own workers: GET /v1/workers (with filters) and GET /v1/workers/{nik} (covered
months, payer, status). A worker is the OPD's when the ledger holds months the OPD enrolled;
another OPD's worker is 404, as one that does not exist (nothing leaks)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query, Request
from pydantic import BaseModel, Field

from schemas.events import Category
from services.api.deps import Agency, Pool
from services.api.params import Code, Cursor, Limit
from services.api.reading import record_read
from services.privacy.access_log import NikTally

router = APIRouter(tags=["registrations"])

WorkerStatus = Literal["active", "held", "stopped"]
STATUS_SQL = """CASE WHEN active_months > 0 THEN 'active' WHEN held_months > 0 THEN 'held'
                     ELSE 'stopped' END"""
_SUMMARY = f"""
SELECT w.*, {STATUS_SQL} AS status, n.full_name
  FROM (SELECT c.nik, c.programme,
               (array_agg(c.category ORDER BY c.period DESC))[1] AS category,
               (array_agg(c.kecamatan ORDER BY c.period DESC))[1] AS kecamatan,
               count(*) FILTER (WHERE c.status IN ('booked', 'billed', 'paid')) AS active_months,
               count(*) FILTER (WHERE c.status = 'held') AS held_months,
               count(*) FILTER (WHERE c.status = 'cancelled') AS cancelled_months,
               min(c.period) FILTER (WHERE c.status IN ('booked', 'billed', 'paid'))
                   AS first_period,
               max(c.period) FILTER (WHERE c.status IN ('booked', 'billed', 'paid'))
                   AS last_period
          FROM finance.contributions c
         WHERE c.opd_code = $1 AND ($2::text IS NULL OR c.programme = $2)
           AND ($3::text IS NULL OR c.kecamatan = $3) AND ($4::text IS NULL OR c.category = $4)
           AND ($5::text IS NULL OR c.nik = $5) AND ($6::text IS NULL OR c.nik > $6)
         GROUP BY c.nik, c.programme) w
  LEFT JOIN LATERAL (
        SELECT (r.event::jsonb) -> 'worker' ->> 'full_name' AS full_name
          FROM registry.submission_rows r JOIN registry.submissions s USING (submission_id)
         WHERE r.nik = w.nik AND s.opd_code = $1 AND r.event_type = 'registered'
         ORDER BY s.submitted_at DESC LIMIT 1) n ON true
 WHERE $7::text IS NULL OR {STATUS_SQL} = $7
 ORDER BY w.nik, w.programme"""


class WorkerSummary(BaseModel):
    nik: str
    full_name: str | None = Field(description="as the OPD last sent it through the gateway")
    programme: str
    category: str
    kecamatan: str
    status: WorkerStatus = Field(description="active: months booked; held: months wait for "
                                             "budget; stopped: every month cancelled")
    active_months: int
    held_months: int
    cancelled_months: int
    first_period: str | None
    last_period: str | None


class WorkerPage(BaseModel):
    items: list[WorkerSummary]
    next_cursor: str | None = None


class WorkerMonth(BaseModel):
    programme: str
    period: str
    status: Literal["booked", "held", "cancelled", "billed", "paid"]
    amount_idr: int
    generation: int


class Registration(BaseModel):
    event_id: str
    event_type: str
    status: str
    decided_at: datetime


class Me(BaseModel):
    name: str
    opd_code: str
    programmes: list[str]


class WorkerDetail(WorkerSummary):
    payer: str = Field(description="who pays the premium, and from which funding source")
    covered_periods: list[str] = Field(description="months booked (paid or to be paid)")
    months: list[WorkerMonth]
    registrations: list[Registration] = Field(
        description="this OPD's events for the worker and what became of them")


async def _summaries(pool: Pool, opd: str, *, programme: str | None = None,
                     kecamatan: str | None = None, category: str | None = None,
                     nik: str | None = None, after: str | None = None,
                     status: str | None = None, limit: int = 1) -> list[dict[str, Any]]:
    rows = await pool.fetch(_SUMMARY + f" LIMIT {int(limit)}", opd, programme, kecamatan,
                            category, nik, after, status)
    return [dict(r) for r in rows]


@router.get("/v1/me", response_model=Me)
async def me(principal: Agency) -> Me:
    """Who the token is: its OPD and the programmes it registers in."""
    assert principal.opd_code is not None
    return Me(name=principal.name, opd_code=principal.opd_code,
              programmes=sorted(principal.programmes))


@router.get("/v1/workers", response_model=WorkerPage)
async def workers(
    request: Request, principal: Agency, pool: Pool, limit: Limit, cursor: Cursor = None,
    programme: Code = None, kecamatan: Code = None, category: Category | None = None,
    status: WorkerStatus | None = None,
) -> WorkerPage:
    """The OPD's workers (those whose months it enrolled), by NIK, with their status."""
    assert principal.opd_code is not None
    if cursor is not None and (len(cursor) != 16 or not cursor.isdigit()):
        raise HTTPException(422, detail="cursor is not valid: pass next_cursor unchanged")
    rows = await _summaries(pool, principal.opd_code, programme=programme,
                            kecamatan=kecamatan, category=category.value if category else None,
                            after=cursor, status=status, limit=limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    tally = NikTally()
    tally.add_rows(rows)
    await record_read(pool, request, principal, {
        "programme": programme, "kecamatan": kecamatan, "category": category,
        "status": status, "after": cursor}, tally)
    return WorkerPage(items=[WorkerSummary(**r) for r in rows],
                      next_cursor=rows[-1]["nik"] if more else None)


@router.get("/v1/workers/{nik}", response_model=WorkerDetail,
            responses={404: {"description": "not a worker of this OPD"}})
async def worker(
    request: Request, principal: Agency, pool: Pool, nik: str,
    programme: Annotated[Code, Query(description="when the worker is in several")] = None,
) -> WorkerDetail:
    """One of the OPD's workers: covered months, payer and status. Another OPD's: 404."""
    assert principal.opd_code is not None
    found = None
    if len(nik) == 16 and nik.isascii() and nik.isdigit():
        rows = await _summaries(pool, principal.opd_code, programme=programme, nik=nik)
        found = rows[0] if rows else None
    if found is None:
        raise HTTPException(404, detail="no such worker of this OPD")
    months = await pool.fetch(
        """SELECT programme, period, status, amount_idr, generation, funding_source
             FROM finance.contributions
            WHERE nik = $1 AND opd_code = $2 AND programme = $3
            ORDER BY period, generation""", nik, principal.opd_code, found["programme"])
    events = await pool.fetch(
        """SELECT event_id::text, event_type, status, decided_at
             FROM finance.registration_outcomes
            WHERE nik = $1 AND opd_code = $2 AND programme = $3 ORDER BY decided_at""",
        nik, principal.opd_code, found["programme"])
    tally = NikTally()
    tally.add(nik)
    await record_read(pool, request, principal, {"programme": found["programme"]}, tally)
    config = request.app.state.programmes.get(found["programme"])
    sources = sorted({m["funding_source"] for m in months})
    payer = f"{config.payer if config else found['programme']} ({', '.join(sources)})"
    return WorkerDetail(
        **found, payer=payer,
        covered_periods=[m["period"] for m in months
                         if m["status"] in ("booked", "billed", "paid")],
        months=[WorkerMonth(**{k: m[k] for k in WorkerMonth.model_fields}) for m in months],
        registrations=[Registration(**dict(e)) for e in events])
