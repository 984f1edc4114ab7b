"""The finance lists: contributions, monthly bill, bills, budget, outstanding, discrepancies,
arrears and one worker's history. Every one needs a token; NIKs are masked for ops."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request

from services.api import models
from services.api.deps import Anyone, Keys, Personal, Pool, max_page
from services.api.params import Code, Cursor, Limit, PeriodParam, PeriodRange, WorkerFilters
from services.api.reading import audit, listing, page
from services.ledger.views import VIEWS

router = APIRouter(tags=["finance"])

MaxPage = Annotated[int, Depends(max_page)]


@router.get("/contributions", response_model=models.Page[models.Contribution])
async def contributions(
    request: Request, principal: Anyone, pool: Pool, keys: Keys, periods: PeriodRange,
    workers: WorkerFilters, limit: Limit, cursor: Cursor = None, programme: Code = None,
    status: Literal["booked", "held", "cancelled", "billed", "paid"] | None = None,
) -> dict[str, Any]:
    """Contributions with their status, in (period, contribution_id) order. Roles without
    personal data see masked NIKs and keyed pseudonyms in place of contribution_id."""
    return await page(pool, keys, request, VIEWS["contributions"], principal,
                      {"programme": programme, **periods, **workers, "status": status},
                      limit, cursor)


@router.get("/monthly-bill", response_model=models.MonthlyBill)
async def monthly_bill(
    principal: Anyone, pool: Pool, largest: MaxPage,
    period: Annotated[PeriodParam, Query(description="the month, YYYY-MM")],
    programme: Code = None, opd_code: Code = None,
) -> dict[str, Any]:
    """What is payable to BPJS for one month, per OPD, with totals."""
    if period is None:
        raise HTTPException(422, detail="period is required (YYYY-MM)")
    items = (await listing(pool, VIEWS["monthly_bill"], {
        "programme": programme, "period_from": period, "period_to": period,
        "opd_code": opd_code}, largest))["items"]
    totals = {k: sum(r[k] for r in items) for k in models.MonthlyBillTotals.model_fields}
    due = min((r["due_date"] for r in items), default=None)
    return {"period": period, "programme": programme, "due_date": due, "totals": totals,
            "items": items}


@router.get("/bills", response_model=models.Listing[models.Bill])
async def bills(
    principal: Anyone, pool: Pool, largest: MaxPage, periods: PeriodRange,
    programme: Code = None, status: Literal["open", "past_due", "paid"] | None = None,
) -> dict[str, Any]:
    """Issued bills (original and supplementary) and whether they are paid."""
    return await listing(pool, VIEWS["bills"],
                         {"programme": programme, **periods, "status": status}, largest)


@router.get("/budget", response_model=models.Listing[models.BudgetUtilisation])
async def budget(principal: Anyone, pool: Pool, largest: MaxPage,
                 programme: Code = None) -> dict[str, Any]:
    """Budget utilisation per programme, funding source and fiscal year."""
    return await listing(pool, VIEWS["budget_utilisation"], {"programme": programme}, largest)


@router.get("/budget/changes", response_model=models.Listing[models.BudgetChange])
async def budget_changes(principal: Personal, pool: Pool, largest: MaxPage,
                         programme: Code = None) -> dict[str, Any]:
    """Every allocation ever set, with its reason and who set it."""
    return await listing(pool, VIEWS["budget_changes"], {"programme": programme}, largest)


@router.get("/outstanding", response_model=models.Listing[models.Outstanding])
async def outstanding(principal: Anyone, pool: Pool, largest: MaxPage, periods: PeriodRange,
                      programme: Code = None) -> dict[str, Any]:
    """Booked and not yet paid, per programme and month."""
    return await listing(pool, VIEWS["outstanding"], {"programme": programme, **periods},
                         largest)


@router.get("/discrepancies", response_model=models.Page[models.Discrepancy])
async def discrepancies(
    request: Request, principal: Personal, pool: Pool, keys: Keys, periods: PeriodRange,
    limit: Limit, cursor: Cursor = None, programme: Code = None,
    status: Literal["open", "resolved"] | None = None,
) -> dict[str, Any]:
    """Payments not applied (partial, excess, unknown bill, ...) for a person to resolve."""
    return await page(pool, keys, request, VIEWS["discrepancies"], principal,
                      {"programme": programme, **periods, "status": status}, limit, cursor)


@router.get("/arrears", response_model=models.Page[models.Arrears])
async def arrears(
    request: Request, principal: Anyone, pool: Pool, keys: Keys, workers: WorkerFilters,
    limit: Limit, cursor: Cursor = None, programme: Code = None,
    lapse_risk: bool | None = None,
) -> dict[str, Any]:
    """Workers with unpaid months past their due date; lapse_risk = 3 or more."""
    return await page(pool, keys, request, VIEWS["arrears"], principal,
                      {"programme": programme, **workers, "lapse_risk": lapse_risk},
                      limit, cursor)


@router.get("/cover-expiry", response_model=models.Page[models.CoverExpiry])
async def cover_expiry(
    request: Request, principal: Anyone, pool: Pool, keys: Keys, workers: WorkerFilters,
    limit: Limit, cursor: Cursor = None, programme: Code = None,
    months_left_max: Annotated[int | None, Query(
        ge=0, le=120, description="only workers with at most this many months left")] = None,
    renewed_to: Code = None,
) -> dict[str, Any]:
    """Whose cover ends when: per worker and programme the last booked and paid month, the
    months left from today (the programme's time zone), when the membership becomes inactive
    and the programme that continues it. Filter by opd_code for one OPD's workers."""
    return await page(pool, keys, request, VIEWS["cover_expiry"], principal,
                      {"programme": programme, **workers, "months_left_max": months_left_max,
                       "renewed_to": renewed_to}, limit, cursor)


@router.get("/waiting-list", response_model=models.Page[models.WaitingListEntry])
async def waiting_list(
    request: Request, principal: Anyone, pool: Pool, keys: Keys, workers: WorkerFilters,
    limit: Limit, cursor: Cursor = None, programme: Code = None, renewal_of: Code = None,
) -> dict[str, Any]:
    """Who waits for budget, in the order they will be booked when it is raised (renewed
    workers first, in the renewal's priority order). Filter by opd_code for one OPD."""
    return await page(pool, keys, request, VIEWS["waiting_list"], principal,
                      {"programme": programme, **workers, "renewal_of": renewal_of},
                      limit, cursor)


@router.get("/bpjs/members", response_model=models.Page[models.BpjsMember])
async def bpjs_members(
    request: Request, principal: Anyone, pool: Pool, keys: Keys, limit: Limit,
    cursor: Cursor = None, programme: Code = None,
    status: Literal["verified", "rejected"] | None = None,
) -> dict[str, Any]:
    """Each worker's standing at BPJS (finance.bpjs_members): the KPJ of a verified worker,
    BPJS's reason for a rejected one; in (programme, nik) order."""
    return await page(pool, keys, request, VIEWS["bpjs_members"], principal,
                      {"programme": programme, "status": status}, limit, cursor)


@router.get("/bpjs/bills", response_model=models.Listing[models.BpjsBillSummary])
async def bpjs_bills(principal: Anyone, pool: Pool, largest: MaxPage, periods: PeriodRange,
                     programme: Code = None) -> dict[str, Any]:
    """BPJS's bills with what finance should pay (finance.bpjs_bills): pay a bill once it
    is reconciled, or its payable_idr."""
    return await listing(pool, VIEWS["bpjs_bills"], {"programme": programme, **periods},
                         largest)


@router.get("/bpjs/reconciliation", response_model=models.Page[models.BpjsReconciliationLine])
async def bpjs_reconciliation(
    request: Request, principal: Anyone, pool: Pool, keys: Keys, limit: Limit,
    cursor: Cursor = None, programme: Code = None, bpjs_bill_id: Code = None,
    outcome: Literal["matched", "amount_differs", "not_verified", "not_ours",
                     "missing_at_bpjs"] | None = None,
) -> dict[str, Any]:
    """BPJS's bill lines against the ledger (finance.bpjs_reconciliation)."""
    return await page(pool, keys, request, VIEWS["bpjs_reconciliation"], principal,
                      {"programme": programme, "bpjs_bill_id": bpjs_bill_id,
                       "outcome": outcome}, limit, cursor)


@router.get("/workers/{nik}/history", response_model=models.Listing[models.WorkerHistoryEntry])
async def worker_history(request: Request, principal: Personal, pool: Pool,
                         largest: MaxPage, nik: str) -> dict[str, Any]:
    """Everything that happened to one worker's months (finance and auditor only)."""
    if len(nik) != 16 or not nik.isdigit():
        raise HTTPException(422, detail="a NIK is exactly 16 digits")
    spec = VIEWS["worker_history"]
    result = await listing(pool, spec, {"nik": nik}, largest)
    await audit(pool, request, principal, spec, {"nik": nik}, result["items"])
    return result

