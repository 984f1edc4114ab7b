"""The rows of the finance views (services/ledger/views/finance.*.sql) as pydantic models:
the one home of each view's columns. ``services.ledger.views`` selects these columns, the API
answers with these models (so /docs shows every field finance sees), and a test compares
them with the views PostgreSQL has. ``not_selected`` names the columns a view has for SQL
that reads it (other views, the services) and that finance lists and exports leave out."""

from __future__ import annotations

from datetime import date, datetime
from typing import ClassVar, Literal
from uuid import UUID

from pydantic import BaseModel, Field

Nik = Field(description="16 digits; masked (3573********0001) for roles without personal data")


class Contribution(BaseModel):
    not_selected: ClassVar[tuple[str, ...]] = ("schedule_id", "registration_event_id")

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
    booked_idr: int = Field(description="months booked and not cancelled")
    paid_idr: int
    held_idr: int
    held_contributions: int
    remaining_idr: int = Field(description="allocated minus booked and credits: the room left")
    changed_at: datetime | None
    credit_idr: int = Field(description="months cancelled after they were billed: money at "
                                        "BPJS, still committed, never paid again in cash")


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


class CoverExpiry(BaseModel):
    nik: str = Nik
    programme: str
    opd_code: str
    category: str
    kecamatan: str
    first_period: str = Field(description="the first month the programme books")
    covered_through: str = Field(description="the last month the programme books")
    paid_through: str | None = Field(description="the last month paid to BPJS")
    months_left: int = Field(description="months from this month (in the programme's time "
                                         "zone) to covered_through, both included; 0: ended")
    inactive_from: str | None = Field(description="the third month without payment after "
                                                  "paid_through, when no programme follows")
    renewed_to: str | None = Field(description="the programme whose months follow")
    renewed_from: str | None = Field(description="its first month")
    today: date = Field(description="the programme's day the months are counted from")


class WaitingListEntry(BaseModel):
    place: int = Field(description="the worker's place in the programme's queue (1 first)")
    programme: str
    funding_source: str
    nik: str = Nik
    opd_code: str
    category: str
    kecamatan: str
    reason: str = Field(description="budget_exceeded or no_allocation")
    first_period: str
    last_period: str
    months: int
    amount_idr: int
    held_at: datetime
    renewal_rank: int | None = Field(description="the place a renewal gave the worker")
    renewal_of: str | None = Field(description="the programme the renewal continues")


class BpjsMember(BaseModel):
    not_selected: ClassVar[tuple[str, ...]] = ("verification_id", "received_at")

    nik: str = Nik
    programme: str
    kpj: str | None = Field(description="participant number, when verified")
    status: str = Field(description="BPJS's latest verdict: verified or rejected")
    reason_code: str | None
    reason: str | None = Field(description="BPJS's own words (verbatim), when rejected")
    effective_period: str | None = Field(description="first month BPJS covers")
    verified_at: datetime
    cancelled_months: int = Field(
        description="months the rejection cancelled: unbilled when it arrived, and those of "
                    "the registrations it judged that arrived after it")



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


class Credit(BaseModel):
    credit_id: UUID
    source: Literal["deregistration", "payment"]
    contribution_id: UUID | None
    payment_id: UUID | None
    nik: str | None = Nik
    programme: str
    period: str
    bill_id: UUID | None
    amount_idr: int
    status: Literal["carried_over", "refunded"]
    recorded_at: datetime
    refunded_at: datetime | None
    refund_reason: str | None


class CashReconciliation(BaseModel):
    programme: str
    payments: int
    received_idr: int
    journal_cash_idr: int
    unapplied_idr: int
    difference_idr: int
    voided_idr: int


class AccountBalance(BaseModel):
    account: str
    debit_idr: int
    credit_idr: int
    balance_idr: int
