"""Response models of the finance endpoints: one row model per finance view, so that /docs
shows every field finance sees (the columns of services.ledger.views, same names)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Generic, Literal, TypeVar
from uuid import UUID

from pydantic import BaseModel, Field

Row = TypeVar("Row", bound=BaseModel)

Nik = Field(description="16 digits; masked (3573********0001) for roles without personal data")


class Page(BaseModel, Generic[Row]):
    items: list[Row]
    next_cursor: str | None = Field(
        default=None, description="pass as cursor for the next page; null on the last page")


class Listing(BaseModel, Generic[Row]):
    items: list[Row]


class Contribution(BaseModel):
    contribution_id: UUID
    nik: str = Nik
    programme: str
    period: str
    due_date: date
    amount_idr: int
    jkk_idr: int
    jkm_idr: int
    opd_code: str
    category: str
    kecamatan: str
    funding_source: str
    status: Literal["booked", "held", "cancelled", "billed", "paid"]
    bill_id: UUID | None
    bill_sequence: int | None
    payment_id: UUID | None
    paid_at: datetime | None
    booked_at: datetime | None
    cancelled_at: datetime | None
    generation: int = Field(description="0 the first time a month is paid, 1 after one "
                                        "deregistration of it, ...")


class MonthlyBillLine(BaseModel):
    programme: str
    period: str
    opd_code: str
    due_date: date
    workers: int
    amount_idr: int
    jkk_idr: int
    jkm_idr: int
    billed_idr: int
    paid_idr: int
    unbilled_idr: int


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


class Bill(BaseModel):
    bill_id: UUID
    programme: str
    period: str
    sequence: int
    due_date: date
    workers: int
    amount_idr: int
    issued_at: datetime
    issued_by: str
    status: Literal["open", "past_due", "paid"]
    payment_id: UUID | None
    payment_reference: str | None
    paid_at: datetime | None
    lines: int = Field(description="contributions on the bill")
    billing: Literal["monthly", "prepaid"]
    fiscal_year: int | None
    first_period: str | None = Field(description="first month on the bill")
    last_period: str | None = Field(description="last month on the bill")


class BudgetUtilisation(BaseModel):
    programme: str
    funding_source: str
    fiscal_year: int | None
    allocated_idr: int
    booked_idr: int
    paid_idr: int
    held_idr: int
    held_contributions: int
    remaining_idr: int
    changed_at: datetime | None


class BudgetChange(BaseModel):
    change_id: int
    programme: str
    funding_source: str
    fiscal_year: int
    previous_idr: int
    allocated_idr: int
    raised_by_idr: int
    source: Literal["configuration", "command"]
    reason: str
    changed_by: str
    changed_at: datetime


class Outstanding(BaseModel):
    programme: str
    period: str
    due_date: date
    contributions: int
    outstanding_idr: int
    billed_idr: int
    unbilled_idr: int
    past_due: bool


class Discrepancy(BaseModel):
    discrepancy_id: UUID
    payment_id: UUID
    programme: str
    period: str
    kind: str
    expected_idr: int
    paid_idr: int
    difference_idr: int
    reference: str
    detail: str
    paid_at: datetime
    recorded_at: datetime
    status: Literal["open", "resolved"]
    resolution: str | None
    resolved_by: str | None
    resolved_at: datetime | None
    unapplied_idr: int = Field(description="in the suspense account until resolved")
    action: str | None = Field(description="what the resolution did with the money")
    applied_to_bill_id: UUID | None
    applied_idr: int
    refunded_idr: int
    carried_over_idr: int


class Arrears(BaseModel):
    nik: str = Nik
    programme: str
    opd_code: str
    category: str
    kecamatan: str
    unpaid_months: int
    unpaid_idr: int
    oldest_unpaid_period: str
    latest_unpaid_period: str
    oldest_due_date: date
    held_months: int
    lapse_risk: bool = Field(description="three or more unpaid months: the membership lapses")
    prepaid: bool | None = Field(description="months of a prepaid bill (never at lapse risk)")


class BpjsMember(BaseModel):
    nik: str = Nik
    programme: str
    kpj: str | None = Field(description="participant number, when verified")
    status: str = Field(description="BPJS's latest verdict: verified or rejected")
    reason_code: str | None
    reason: str | None = Field(description="BPJS's own words (verbatim), when rejected")
    effective_period: str | None = Field(description="first month BPJS covers")
    verified_at: datetime
    cancelled_months: int = Field(description="unbilled months the rejection cancelled")


class BpjsReconciliationLine(BaseModel):
    bpjs_bill_id: str
    programme: str
    period: str
    nik: str = Nik
    kpj: str | None
    line_number: int | None = Field(description="the line of BPJS's bill; none for a month "
                                                "BPJS did not bill")
    outcome: Literal["matched", "amount_differs", "not_verified", "not_ours",
                     "missing_at_bpjs"]
    expected_idr: int | None = Field(description="what the ledger books for the month")
    billed_idr: int | None = Field(description="what BPJS bills for it")
    payable_idr: int = Field(description="what finance should pay for the line")


class BpjsBillSummary(BaseModel):
    bpjs_bill_id: str
    programme: str
    period: str
    issued_at: datetime
    received_at: datetime
    lines: int
    billed_idr: int
    payable_idr: int = Field(description="what finance should pay: the reconciled lines")
    matched_lines: int
    unreconciled_lines: int
    reconciled: bool = Field(description="every line matched and no month is missing")


class WorkerHistoryEntry(BaseModel):
    nik: str
    programme: str
    period: str
    contribution_id: UUID
    event: str = Field(description="booked, held, cancelled, cancellation_refused, billed, "
                                   "paid or duplicate_attempt")
    at: datetime | None
    amount_idr: int
    opd_code: str
    detail: str | None
    generation: int
