"""Response models of the finance endpoints: pages and listings of the finance views' rows
(whose models live with the views, services.ledger.view_rows) and the monthly bill."""

from __future__ import annotations

from datetime import date
from typing import Generic, TypeVar

from pydantic import BaseModel, Field

from services.ledger.view_rows import (
    Arrears,
    Bill,
    BpjsBillSummary,
    BpjsMember,
    BpjsReconciliationLine,
    BudgetChange,
    BudgetUtilisation,
    Contribution,
    CoverExpiry,
    Discrepancy,
    MonthlyBillLine,
    Outstanding,
    WaitingListEntry,
    WorkerHistoryEntry,
)

__all__ = ["Arrears", "Bill", "BpjsBillSummary", "BpjsMember", "BpjsReconciliationLine",
           "BudgetChange", "BudgetUtilisation", "Contribution",
           "CoverExpiry", "Discrepancy", "Listing", "MonthlyBill", "MonthlyBillLine",
           "MonthlyBillTotals", "Outstanding", "Page", "WaitingListEntry", "WorkerHistoryEntry"]

Row = TypeVar("Row", bound=BaseModel)


class Page(BaseModel, Generic[Row]):
    items: list[Row]
    next_cursor: str | None = Field(
        default=None, description="pass as cursor for the next page; null on the last page")


class Listing(BaseModel, Generic[Row]):
    items: list[Row]


class MonthlyBillTotals(BaseModel):
    workers: int
    amount_idr: int
    jkk_idr: int
    jkm_idr: int
    billed_idr: int
    paid_idr: int
    unbilled_idr: int


class MonthlyBill(BaseModel):
    period: str
    programme: str | None
    due_date: date | None
    totals: MonthlyBillTotals
    items: list[MonthlyBillLine]


