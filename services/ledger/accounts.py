"""The chart of accounts, as data, and the postings a booking plan makes between them.

Every account belongs to a programme (or, for cash, to a funding source); its code is
``<kind>:<purpose>:<owner>``. A transfer moves one amount from one account to another, so
every entry balances by construction (TigerBeetle's model): the debit account gains what the
credit account gives.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from uuid import UUID, uuid4

from services.ledger.model import Month, Plan


class Kind(StrEnum):
    ASSET = "asset"
    LIABILITY = "liability"
    EXPENSE = "expense"


@dataclass(frozen=True)
class AccountType:
    kind: Kind
    purpose: str
    owner: str  # what an account of this type belongs to: a programme or a funding source
    description: str

    def code(self, owner: str) -> str:
        return f"{self.kind}:{self.purpose}:{owner}"


PREMIUM_EXPENSE = AccountType(Kind.EXPENSE, "premium", "programme",
                              "premiums booked for the programme's workers")
BPJS_PAYABLE = AccountType(Kind.LIABILITY, "bpjs_payable", "programme",
                           "premiums owed to BPJS, until a bill of theirs is paid")
BPJS_CREDIT = AccountType(Kind.ASSET, "bpjs_credit", "programme",
                          "premiums paid to (or billed by) BPJS for months later cancelled")
UNAPPLIED = AccountType(Kind.ASSET, "unapplied", "programme",
                        "payments received and not yet applied to a bill (suspense)")
REFUND_DUE = AccountType(Kind.ASSET, "refund_due", "programme",
                         "credits BPJS is to refund to the treasury")
CASH = AccountType(Kind.ASSET, "cash", "funding_source",
                   "the treasury's cash of a funding source")

CHART = (PREMIUM_EXPENSE, BPJS_PAYABLE, BPJS_CREDIT, UNAPPLIED, REFUND_DUE, CASH)


def chart_of(programme: str, funding_source: str) -> list[tuple[str, str, str, str, str]]:
    """The accounts a programme funded from ``funding_source`` posts to, as
    (code, kind, purpose, owner, description)."""
    return [(t.code(funding_source if t.owner == "funding_source" else programme), str(t.kind),
             t.purpose, funding_source if t.owner == "funding_source" else programme,
             t.description) for t in CHART]


@dataclass(frozen=True, slots=True)
class Transfer:
    transfer_id: UUID
    kind: str
    debit_account: str
    credit_account: str
    amount_idr: int


@dataclass
class Postings:
    """The journal entries of one batch: per allocation, one accrual carrying every month
    booked, one reversal carrying the unbilled months cancelled (their room is freed) and one
    carrying the billed months cancelled into a credit at BPJS. ``booking`` and
    ``cancellation`` name the transfer that carries each month booked, and cancelled (a month
    can be both within one batch)."""

    transfers: list[Transfer] = field(default_factory=list)
    booking: dict[UUID, UUID] = field(default_factory=dict)
    cancellation: dict[UUID, UUID] = field(default_factory=dict)


def postings(plan: Plan) -> Postings:
    """The summary postings of a plan; the subledger rows point to them."""
    out = Postings()
    groups: dict[tuple[str, str, str], list[Month]] = {}
    for month in (*plan.booked, *plan.released):
        groups.setdefault(("accrual", month.programme, month.funding_source), []).append(month)
    for booked in plan.reversed:
        month = booked.month
        groups.setdefault(("reversal", month.programme, month.funding_source), []).append(month)
    for booked in plan.credited:
        month = booked.month
        groups.setdefault(("credit", month.programme, month.funding_source), []).append(month)
    for (what, programme, _), months in groups.items():
        if what == "accrual":
            debit, credit, kind = PREMIUM_EXPENSE, BPJS_PAYABLE, "accrual"
        else:
            debit = BPJS_PAYABLE if what == "reversal" else BPJS_CREDIT
            credit, kind = PREMIUM_EXPENSE, "reversal"
        transfer = Transfer(uuid4(), kind, debit.code(programme), credit.code(programme),
                            sum(m.amount_idr for m in months))
        out.transfers.append(transfer)
        carried = out.booking if what == "accrual" else out.cancellation
        carried.update((m.contribution_id, transfer.transfer_id) for m in months)
    return out
