"""The chart of accounts, as data, and the transfers a booking plan moves between them.

Every account belongs to a programme (or, for cash, to a funding source); its code is
``<kind>:<purpose>:<owner>``. A transfer moves one amount from one account to another, so
every entry balances by construction (TigerBeetle's model): the debit account gains what the
credit account gives.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from enum import StrEnum
from uuid import UUID

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


@dataclass(frozen=True, slots=True)
class Transfer:
    transfer_id: UUID
    kind: str
    debit_account: str
    credit_account: str
    amount_idr: int
    contribution_id: UUID


def transfer_id(kind: str, contribution_id: UUID) -> UUID:
    """The transfer's id, derived from its kind and contribution: a replay repeats it."""
    return UUID(hashlib.md5(f"{kind}:{contribution_id}".encode()).hexdigest())  # noqa: S324


def transfers(plan: Plan) -> list[Transfer]:
    """The journal entries of a plan: an accrual per month booked (premium expense owed to
    BPJS), a reversal per month cancelled — back from the payable when it was not billed,
    into a credit at BPJS when it was."""
    entries = []
    for month in (*plan.booked, *plan.released):
        programme = month.programme
        entries.append(Transfer(
            transfer_id("accrual", month.contribution_id), "accrual",
            PREMIUM_EXPENSE.code(programme), BPJS_PAYABLE.code(programme), month.amount_idr,
            month.contribution_id))
    entries.extend(_reversal(booked.month, BPJS_PAYABLE) for booked in plan.reversed)
    entries.extend(_reversal(booked.month, BPJS_CREDIT) for booked in plan.credited)
    return entries


def _reversal(month: Month, debit: AccountType) -> Transfer:
    return Transfer(transfer_id("reversal", month.contribution_id), "reversal",
                    debit.code(month.programme), PREMIUM_EXPENSE.code(month.programme),
                    month.amount_idr, month.contribution_id)
