"""An OPD's own workers: GET /v1/workers (with filters) and GET /v1/workers/{nik} (covered
months, payer, status), whose cover ends when (GET /v1/cover-expiry) and who waits for budget
(GET /v1/waiting-list), the last two read from the finance views for the OPD alone. A worker
is the OPD's when the ledger holds months the OPD enrolled; another OPD's worker is 404, as
one that does not exist (nothing leaks)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query, Request
from pydantic import BaseModel, Field

from schemas.events import Category
from services.api.deps import Agency, Keys, Pool
from services.api.models import CoverExpiry, Page, WaitingListEntry
from services.api.params import Code, Cursor, Limit
from services.api.reading import page, record_read
from services.api.workers import WorkerStatus, events, months, summaries
from services.ledger.views import VIEWS
from services.privacy.access_log import NikTally

router = APIRouter(tags=["registrations"])


class WorkerSummary(BaseModel):
    nik: str
    full_name: str | None = Field(description="as the OPD last corrected it, else as it last "
                                              "registered the worker through the gateway")
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
    bpjs_status: Literal["verified", "rejected"] | None = Field(
        default=None, description="BPJS's latest verdict on the worker; none: not answered "
                                  "yet (awaiting BPJS)")
    bpjs_kpj: str | None = Field(default=None, description="participant number (KPJ)")
    bpjs_effective_period: str | None = Field(
        default=None, description="first month BPJS covers, when verified")
    bpjs_reason_code: str | None = Field(default=None, description="BPJS's code, when rejected")
    bpjs_reason: str | None = Field(
        default=None, description="BPJS's reason in its own words (verbatim), when rejected: "
                                  "correct the worker's data and send the worker again")


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
    now: datetime = Field(description="the gateway's clock: what the OPD page stamps its "
                                      "events with and counts months from")


class WorkerDetail(WorkerSummary):
    payer: str = Field(description="who pays the premium, and from which funding source")
    covered_periods: list[str] = Field(description="months booked (paid or to be paid)")
    months: list[WorkerMonth]
    registrations: list[Registration] = Field(
        description="this OPD's events for the worker and what became of them")


@router.get("/v1/me", response_model=Me)
async def me(request: Request, principal: Agency) -> Me:
    """Who the token is: its OPD and the programmes it registers in."""
    assert principal.opd_code is not None
    return Me(name=principal.name, opd_code=principal.opd_code,
              programmes=sorted(principal.programmes), now=request.app.state.clock())


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
    rows = await summaries(pool, principal.opd_code, programme=programme,
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


@router.get("/v1/cover-expiry", response_model=Page[CoverExpiry])
async def cover_expiry(
    request: Request, principal: Agency, pool: Pool, keys: Keys, limit: Limit,
    cursor: Cursor = None, programme: Code = None,
    months_left_max: Annotated[int | None, Query(ge=0, le=120)] = None,
) -> dict[str, Any]:
    """Whose cover ends when among the OPD's workers (finance.cover_expiry)."""
    return await page(pool, keys, request, VIEWS["cover_expiry"], principal,
                      {"opd_code": principal.opd_code, "programme": programme,
                       "months_left_max": months_left_max}, limit, cursor)


@router.get("/v1/waiting-list", response_model=Page[WaitingListEntry])
async def waiting_list(request: Request, principal: Agency, pool: Pool, keys: Keys,
                       limit: Limit, cursor: Cursor = None,
                       programme: Code = None) -> dict[str, Any]:
    """The OPD's workers waiting for budget (finance.waiting_list), in queue order."""
    return await page(pool, keys, request, VIEWS["waiting_list"], principal,
                      {"opd_code": principal.opd_code, "programme": programme}, limit, cursor)


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
        rows = await summaries(pool, principal.opd_code, programme=programme, nik=nik)
        found = rows[0] if rows else None
    if found is None:
        raise HTTPException(404, detail="no such worker of this OPD")
    covered = await months(pool, nik, principal.opd_code, found["programme"])
    decided = await events(pool, nik, principal.opd_code, found["programme"])
    tally = NikTally()
    tally.add(nik)
    await record_read(pool, request, principal, {"programme": found["programme"]}, tally)
    config = request.app.state.programmes.get(found["programme"])
    sources = sorted({m["funding_source"] for m in covered})
    payer = f"{config.payer if config else found['programme']} ({', '.join(sources)})"
    return WorkerDetail(
        **found, payer=payer,
        covered_periods=[m["period"] for m in covered
                         if m["status"] in ("booked", "billed", "paid")],
        months=[WorkerMonth(**{k: m[k] for k in WorkerMonth.model_fields}) for m in covered],
        registrations=[Registration(**dict(e)) for e in decided])
