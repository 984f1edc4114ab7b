"""Payments from treasury/BPJS (iuran.payments.v1). Every rupiah received is in the journal
at once: a receipt moves the whole amount from the cash of the funding source to the
suspense account (``asset:unapplied:<programme>``); a payment that matches the open bill(s)
of its programme and month moves on from there to the payable, line by line; anything else
is a discrepancy whose money waits in suspense until a person applies, refunds or carries
it over (:func:`resolve_discrepancy`).

Matching, in order: the reference was already used by another payment -> duplicate
reference; no bill issued for the month -> unknown bill; every bill already settled ->
already paid; the amount equals one open bill (the oldest such) -> settle that bill; the
amount equals all open bills together -> settle them all; the amount plus the money of the
open partial payments of the month equals one open bill or all of them -> a top-up: settle,
and the partial payments are resolved as applied; less -> partial; more -> excess. A
replayed payment (same payment_id) changes nothing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from uuid import UUID

import asyncpg

from schemas.events import PaymentConfirmed
from services.domain.money import rupiah
from services.domain.schedule import derived_id
from services.ledger import journal, outbox
from services.ledger.bills import bill_lock_sql

log = logging.getLogger(__name__)

SETTLED = "settled"
DISCREPANCY = "discrepancy"
REPLAYED = "replayed"

LEDGER = "ledger"  # resolved_by of what the ledger resolves itself (a top-up)
UNASSIGNED = "unassigned"  # the cash account of a programme without an allocation


class ResolutionError(Exception):
    """A discrepancy resolution that cannot be made; the message says why."""


@dataclass(frozen=True)
class PaymentOutcome:
    outcome: str  # settled | discrepancy | replayed
    kind: str | None = None  # discrepancy kind
    bills: tuple[UUID, ...] = ()
    expected_idr: int = 0
    topped_up: tuple[UUID, ...] = ()  # partial payments' discrepancies this one completed


# The whole payment into suspense: cash of the funding source -> unapplied of the programme.
_RECEIPT = """
INSERT INTO ledger.transfers (transfer_id, kind, debit_account, credit_account, amount_idr,
                              reference, payment_id)
SELECT md5('receipt:' || $1::uuid::text)::uuid, 'receipt', 'asset:unapplied:' || $2,
       'asset:cash:' || coalesce((SELECT min(a.funding_source) FROM ledger.budget_allocations a
                                   WHERE a.programme = $2), 'unassigned'),
       $3::bigint, $4, $1::uuid
 WHERE $3::bigint > 0
ON CONFLICT DO NOTHING
"""

# Settle bills with money in suspense: one settlement transfer per bill line (payable to
# BPJS <- unapplied); the bill is marked paid by payment $1.
_SETTLE = """
WITH settled AS (
    INSERT INTO ledger.bill_settlements (bill_id, payment_id)
    SELECT unnest($2::uuid[]), $1::uuid
    RETURNING bill_id
)
INSERT INTO ledger.transfers (transfer_id, kind, debit_account, credit_account, amount_idr,
                              contribution_id, reference, payment_id)
SELECT md5('settlement:' || $1::uuid::text || ':' || l.contribution_id::text)::uuid,
       'settlement', 'liability:bpjs_payable:' || c.programme,
       'asset:unapplied:' || c.programme, l.amount_idr, l.contribution_id, $3, $1::uuid
  FROM ledger.bill_lines l
  JOIN settled s ON s.bill_id = l.bill_id
  JOIN ledger.contributions c ON c.contribution_id = l.contribution_id
"""

_OPEN_BILLS = """
SELECT b.bill_id, b.sequence, b.amount_idr, b.programme,
       EXISTS (SELECT 1 FROM ledger.bill_settlements s WHERE s.bill_id = b.bill_id) AS settled
  FROM ledger.bills b WHERE b.programme = $1 AND b.period = $2
 ORDER BY b.sequence
"""

# Open partial payments of a month, oldest first: their money waits for a top-up.
_OPEN_PARTIALS = """
SELECT d.discrepancy_id, d.paid_idr
  FROM ledger.discrepancies d
 WHERE d.programme = $1 AND d.period = $2 AND d.kind = 'partial'
   AND NOT EXISTS (SELECT 1 FROM ledger.discrepancy_resolutions r
                    WHERE r.discrepancy_id = d.discrepancy_id)
 ORDER BY d.recorded_at, d.discrepancy_id
"""


def _match(amount: int, bills: list[asyncpg.Record]) -> list[UUID] | None:
    """The open bills an amount settles exactly: the oldest bill of that amount, or all."""
    open_bills = [b for b in bills if not b["settled"]]
    for bill in open_bills:
        if bill["amount_idr"] == amount:
            return [bill["bill_id"]]
    if open_bills and sum(b["amount_idr"] for b in open_bills) == amount:
        return [b["bill_id"] for b in open_bills]
    return None


def _discrepancy(payment: PaymentConfirmed, bills: list[asyncpg.Record],
                 reference_used: bool) -> tuple[str, int, str]:
    """(kind, expected amount, detail) of a payment that settles nothing."""
    open_bills = [b for b in bills if not b["settled"]]
    expected = sum(b["amount_idr"] for b in open_bills)
    if reference_used:
        return "duplicate_reference", expected, "the reference was already used by another payment"
    if not bills:
        return "unknown_bill", 0, f"no bill issued for {payment.programme} {payment.period}"
    if not open_bills:
        return ("already_paid", 0,
                f"every bill of {payment.programme} {payment.period} is already paid")
    sequences = ", ".join(f"#{b['sequence']} {rupiah(b['amount_idr'])}" for b in open_bills)
    if payment.amount_idr < expected:
        return "partial", expected, f"less than the open bills ({sequences})"
    return "excess", expected, f"more than the open bills ({sequences})"


async def apply_payment(
    connection: asyncpg.Connection, payment: PaymentConfirmed
) -> PaymentOutcome:
    """Record one payment confirmation: its money into suspense, then settle bills with it
    (and any partial payments it tops up) or record a discrepancy."""
    async with connection.transaction():
        await connection.execute(bill_lock_sql(), payment.programme, payment.period)
        await connection.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended('payment-reference:' || $1, 0))",
            payment.reference)
        seen = await connection.fetchval(
            "SELECT outcome FROM ledger.payments WHERE payment_id = $1", payment.payment_id)
        if seen is not None:
            return PaymentOutcome(REPLAYED)
        reference_used = bool(await connection.fetchval(
            "SELECT EXISTS (SELECT 1 FROM ledger.payments WHERE reference = $1)",
            payment.reference))
        bills = await connection.fetch(_OPEN_BILLS, payment.programme, payment.period)
        settle: list[UUID] | None = None
        partials: list[asyncpg.Record] = []
        if not reference_used:
            settle = _match(payment.amount_idr, bills)
            if settle is None:
                partials = await connection.fetch(
                    _OPEN_PARTIALS, payment.programme, payment.period)
                waiting = sum(p["paid_idr"] for p in partials)
                settle = _match(payment.amount_idr + waiting, bills) if partials else None
                if settle is None:
                    partials = []
        await connection.execute(
            """INSERT INTO ledger.payments (payment_id, programme, period, amount_idr,
                   reference, paid_at, outcome)
               VALUES ($1, $2, $3, $4, $5, $6, $7)""",
            payment.payment_id, payment.programme, payment.period, payment.amount_idr,
            payment.reference, payment.paid_at, SETTLED if settle else DISCREPANCY)
        funding_source = await connection.fetchval(
            "SELECT min(funding_source) FROM ledger.budget_allocations WHERE programme = $1",
            payment.programme)
        await journal.open_accounts(connection, payment.programme, funding_source or UNASSIGNED)
        await connection.execute(_RECEIPT, payment.payment_id, payment.programme,
                                 payment.amount_idr, payment.reference)
        if settle is None:
            kind, expected, detail = _discrepancy(payment, bills, reference_used)
            await connection.execute(
                """INSERT INTO ledger.discrepancies (discrepancy_id, payment_id, programme,
                       period, kind, expected_idr, paid_idr, reference, detail)
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)""",
                derived_id("discrepancy", str(payment.payment_id)), payment.payment_id,
                payment.programme, payment.period, kind, expected, payment.amount_idr,
                payment.reference, detail)
            log.warning("payment for %s %s recorded as a discrepancy (%s); Rp%s in suspense",
                        payment.programme, payment.period, kind, f"{payment.amount_idr:,}")
            return PaymentOutcome(DISCREPANCY, kind, expected_idr=expected)
        await connection.execute(_SETTLE, payment.payment_id, settle, payment.reference)
        await outbox.record_settlements(connection, settle)
        for partial in partials:
            await connection.execute(
                """INSERT INTO ledger.discrepancy_resolutions (discrepancy_id, resolution,
                       resolved_by, action, bill_id, applied_idr)
                   VALUES ($1, $2, $3, 'topped_up', $4, $5)""",
                partial["discrepancy_id"],
                f"completed by payment {payment.reference} (top-up)", LEDGER, settle[0],
                partial["paid_idr"])
    expected = sum(b["amount_idr"] for b in bills if b["bill_id"] in settle)
    log.info("payment for %s %s settled %d bill(s), Rp%s%s", payment.programme,
             payment.period, len(settle), f"{expected:,}",
             f" with {len(partials)} partial payment(s)" if partials else "")
    return PaymentOutcome(SETTLED, bills=tuple(settle), expected_idr=expected,
                          topped_up=tuple(p["discrepancy_id"] for p in partials))


# --- Resolving a discrepancy: the money moves, with balanced transfers ----------------------

APPLY, REFUND, CARRY_OVER = "apply", "refund", "carry_over"


@dataclass(frozen=True)
class Resolution:
    discrepancy_id: UUID
    applied_idr: int = 0
    refunded_idr: int = 0
    carried_over_idr: int = 0
    bill_id: UUID | None = None


# Move money of one payment out of suspense: refunded (BPJS returns it to the treasury) or
# carried over (kept at BPJS as a credit of the programme).
_MOVE = """
INSERT INTO ledger.transfers (transfer_id, kind, debit_account, credit_account, amount_idr,
                              reference, payment_id)
VALUES (md5($1::text || ':' || $2::uuid::text)::uuid, $1::text,
        CASE $1::text WHEN 'refund' THEN 'asset:refund_due:' ELSE 'asset:bpjs_credit:' END
            || $3::text,
        'asset:unapplied:' || $3::text, $4::bigint, $5::text, $2::uuid)
"""


async def resolve_discrepancy(
    connection: asyncpg.Connection, discrepancy_id: UUID, *, resolution: str, resolved_by: str,
    action: str, bill_id: UUID | None = None, rest: str | None = None,
) -> Resolution | None:
    """Dispose of all the money of an open discrepancy, once, and record why and by whom.

    ``action`` is ``apply`` (settle the open bill ``bill_id`` with it; what is left over goes
    as ``rest``: ``refund`` or ``carry_over``), ``refund`` or ``carry_over``. Returns None
    when the discrepancy was already resolved; raises :class:`ResolutionError` otherwise."""
    if action not in (APPLY, REFUND, CARRY_OVER):
        raise ResolutionError(f"unknown action {action!r}: apply, refund or carry_over")
    async with connection.transaction():
        found = await connection.fetchrow(
            """SELECT d.payment_id, d.programme, d.period, d.paid_idr, d.reference
                 FROM ledger.discrepancies d WHERE d.discrepancy_id = $1""", discrepancy_id)
        if found is None:
            raise ResolutionError(f"no discrepancy {discrepancy_id}")
        await connection.execute(bill_lock_sql(), found["programme"], found["period"])
        if await connection.fetchval(
                "SELECT 1 FROM ledger.discrepancy_resolutions WHERE discrepancy_id = $1",
                discrepancy_id):
            return None
        paid = found["paid_idr"]
        applied, left = 0, paid
        if action == APPLY:
            applied = await _apply_to_bill(connection, found, bill_id)
            left = paid - applied
            if left and rest not in (REFUND, CARRY_OVER):
                raise ResolutionError(
                    f"{rupiah(left)} is left after the bill: say what becomes of it "
                    "(refund or carry_over)")
        kind = rest if action == APPLY else action
        if left:
            await connection.execute(_MOVE, kind, found["payment_id"], found["programme"],
                                     left, found["reference"])
        result = Resolution(
            discrepancy_id, applied_idr=applied,
            refunded_idr=left if kind == REFUND else 0,
            carried_over_idr=left if kind == CARRY_OVER else 0,
            bill_id=bill_id if action == APPLY else None)
        await connection.execute(
            """INSERT INTO ledger.discrepancy_resolutions (discrepancy_id, resolution,
                   resolved_by, action, bill_id, applied_idr, refunded_idr, carried_over_idr)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8)""",
            discrepancy_id, resolution, resolved_by,
            "applied" if action == APPLY else action, result.bill_id, result.applied_idr,
            result.refunded_idr, result.carried_over_idr)
    log.info("discrepancy of %s %s resolved: applied Rp%s, refunded Rp%s, carried over Rp%s",
             found["programme"], found["period"], f"{result.applied_idr:,}",
             f"{result.refunded_idr:,}", f"{result.carried_over_idr:,}")
    return result


async def _apply_to_bill(
    connection: asyncpg.Connection, found: asyncpg.Record, bill_id: UUID | None
) -> int:
    """Settle an open bill of the discrepancy's programme with its payment; the bill's
    amount."""
    if bill_id is None:
        raise ResolutionError("apply needs the bill to apply the payment to")
    bill = await connection.fetchrow(
        """SELECT b.programme, b.period, b.amount_idr,
                  EXISTS (SELECT 1 FROM ledger.bill_settlements s
                           WHERE s.bill_id = b.bill_id) AS settled
             FROM ledger.bills b WHERE b.bill_id = $1""", bill_id)
    if bill is None or bill["programme"] != found["programme"]:
        raise ResolutionError(f"no bill {bill_id} of programme {found['programme']}")
    if bill["settled"]:
        raise ResolutionError(f"bill {bill_id} is already paid")
    if bill["amount_idr"] > found["paid_idr"]:
        raise ResolutionError(
            f"the payment ({rupiah(found['paid_idr'])}) is less than the bill "
            f"({rupiah(bill['amount_idr'])}): a top-up payment completes it, or refund it")
    if bill["period"] != found["period"]:
        await connection.execute(bill_lock_sql(), bill["programme"], bill["period"])
    await connection.execute(_SETTLE, found["payment_id"], [bill_id], found["reference"])
    await outbox.record_settlements(connection, [bill_id])
    return int(bill["amount_idr"])


# --- Credits of deregistered billed months ---------------------------------------------------

async def refund_credit(
    connection: asyncpg.Connection, contribution_id: UUID, *, reason: str, refunded_by: str
) -> int | None:
    """Refund the credit of a deregistered billed month instead of carrying it over at BPJS:
    its amount moves from ``asset:bpjs_credit`` to ``asset:refund_due``. Only a month whose
    bill was paid has money at BPJS to refund. Returns the amount, or None when it was
    already refunded; raises :class:`ResolutionError` for no credit or an unpaid bill."""
    async with connection.transaction():
        credit = await connection.fetchrow(
            """SELECT k.programme, k.amount_idr, k.bill_id,
                      EXISTS (SELECT 1 FROM ledger.bill_settlements s
                               WHERE s.bill_id = k.bill_id) AS paid
                 FROM ledger.credits k WHERE k.contribution_id = $1""", contribution_id)
        if credit is None:
            raise ResolutionError(f"no credit for contribution {contribution_id}")
        if not credit["paid"]:
            raise ResolutionError(
                f"the credited bill {credit['bill_id']} is not paid: BPJS holds no money of "
                "this month to refund (the month comes off what the bill asks for)")
        inserted = await connection.fetchval(
            """INSERT INTO ledger.credit_refunds (contribution_id, reason, refunded_by)
               VALUES ($1, $2, $3) ON CONFLICT DO NOTHING RETURNING 1""",
            contribution_id, reason, refunded_by)
        if inserted is None:
            return None
        await connection.execute(
            """INSERT INTO ledger.transfers (transfer_id, kind, debit_account, credit_account,
                   amount_idr, contribution_id)
               VALUES (md5('refund:' || $1::uuid::text)::uuid, 'refund',
                       'asset:refund_due:' || $2::text, 'asset:bpjs_credit:' || $2::text,
                       $3::bigint, $1::uuid)""",
            contribution_id, credit["programme"], credit["amount_idr"])
    log.info("credit of Rp%s of %s refunded", f"{credit['amount_idr']:,}", credit["programme"])
    return int(credit["amount_idr"])
