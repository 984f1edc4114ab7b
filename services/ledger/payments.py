"""Payments from treasury/BPJS (iuran.payments.v1): a payment that matches the open issued
bill(s) of its month settles them; anything else becomes a discrepancy for a person.

Matching, in order: the reference was already used by another payment -> duplicate
reference; no bill issued for the month -> unknown bill; every bill already settled ->
already paid; the amount equals one open bill (the oldest such) -> settle that bill; the
amount equals all open bills together -> settle them all; less -> partial; more -> excess.
A replayed payment (same payment_id) changes nothing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from uuid import UUID

import asyncpg

from schemas.events import PaymentConfirmed
from services.domain.schedule import derived_id
from services.ledger.bills import bill_lock_sql

log = logging.getLogger(__name__)

SETTLED = "settled"
DISCREPANCY = "discrepancy"
REPLAYED = "replayed"


@dataclass(frozen=True)
class PaymentOutcome:
    outcome: str  # settled | discrepancy | replayed
    kind: str | None = None  # discrepancy kind
    bills: tuple[UUID, ...] = ()
    expected_idr: int = 0


# One settlement transfer per bill line: payable to BPJS <- cash of the funding source.
_SETTLE = """
WITH settled AS (
    INSERT INTO ledger.bill_settlements (bill_id, payment_id)
    SELECT unnest($2::uuid[]), $1
    RETURNING bill_id
)
INSERT INTO ledger.transfers (transfer_id, kind, debit_account, credit_account, amount_idr,
                              contribution_id, reference)
SELECT md5('settlement:' || $1::text || ':' || l.contribution_id::text)::uuid, 'settlement',
       'liability:bpjs_payable:' || c.programme, 'asset:cash:' || c.funding_source,
       l.amount_idr, l.contribution_id, $3
  FROM ledger.bill_lines l
  JOIN settled s ON s.bill_id = l.bill_id
  JOIN ledger.contributions c ON c.contribution_id = l.contribution_id
"""


def _match(payment: PaymentConfirmed, bills: list[asyncpg.Record],
           reference_used: bool) -> tuple[str | None, list[UUID], int, str]:
    """(discrepancy kind or None, bills to settle, expected amount, detail)."""
    open_bills = [b for b in bills if not b["settled"]]
    expected = sum(b["amount_idr"] for b in open_bills)
    if reference_used:
        return ("duplicate_reference", [], expected,
                "the reference was already used by another payment")
    if not bills:
        return ("unknown_bill", [], 0,
                f"no bill issued for {payment.programme} {payment.period}")
    if not open_bills:
        return ("already_paid", [], 0,
                f"every bill of {payment.programme} {payment.period} is already paid")
    for bill in open_bills:
        if bill["amount_idr"] == payment.amount_idr:
            return None, [bill["bill_id"]], bill["amount_idr"], ""
    if expected == payment.amount_idr:
        return None, [b["bill_id"] for b in open_bills], expected, ""
    sequences = ", ".join(f"#{b['sequence']} Rp{b['amount_idr']:,}" for b in open_bills)
    if payment.amount_idr < expected:
        return "partial", [], expected, f"less than the open bills ({sequences})"
    return "excess", [], expected, f"more than the open bills ({sequences})"


async def apply_payment(
    connection: asyncpg.Connection, payment: PaymentConfirmed
) -> PaymentOutcome:
    """Record one payment confirmation, settling bills or recording a discrepancy."""
    async with connection.transaction():
        await connection.execute(bill_lock_sql(), payment.programme, payment.period)
        await connection.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended('payment-reference:' || $1, 0))",
            payment.reference)
        seen = await connection.fetchval(
            "SELECT outcome FROM ledger.payments WHERE payment_id = $1", payment.payment_id)
        if seen is not None:
            return PaymentOutcome(REPLAYED)
        reference_used = await connection.fetchval(
            "SELECT EXISTS (SELECT 1 FROM ledger.payments WHERE reference = $1)",
            payment.reference)
        bills = await connection.fetch(
            """SELECT b.bill_id, b.sequence, b.amount_idr,
                      EXISTS (SELECT 1 FROM ledger.bill_settlements s
                               WHERE s.bill_id = b.bill_id) AS settled
                 FROM ledger.bills b WHERE b.programme = $1 AND b.period = $2
                ORDER BY b.sequence""", payment.programme, payment.period)
        kind, settle, expected, detail = _match(payment, bills, bool(reference_used))
        await connection.execute(
            """INSERT INTO ledger.payments (payment_id, programme, period, amount_idr,
                   reference, paid_at, outcome)
               VALUES ($1, $2, $3, $4, $5, $6, $7)""",
            payment.payment_id, payment.programme, payment.period, payment.amount_idr,
            payment.reference, payment.paid_at, DISCREPANCY if kind else SETTLED)
        if kind is not None:
            await connection.execute(
                """INSERT INTO ledger.discrepancies (discrepancy_id, payment_id, programme,
                       period, kind, expected_idr, paid_idr, reference, detail)
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)""",
                derived_id("discrepancy", str(payment.payment_id)), payment.payment_id,
                payment.programme, payment.period, kind, expected, payment.amount_idr,
                payment.reference, detail)
            log.warning("payment for %s %s recorded as a discrepancy (%s)",
                        payment.programme, payment.period, kind)
            return PaymentOutcome(DISCREPANCY, kind, expected_idr=expected)
        await connection.execute(_SETTLE, payment.payment_id, settle, payment.reference)
    log.info("payment for %s %s settled %d bill(s), Rp%s", payment.programme, payment.period,
             len(settle), f"{expected:,}")
    return PaymentOutcome(SETTLED, bills=tuple(settle), expected_idr=expected)


async def resolve_discrepancy(
    connection: asyncpg.Connection, discrepancy_id: UUID, *, resolution: str, resolved_by: str
) -> bool:
    """Record what a person decided; False when it was already resolved."""
    status = await connection.fetchval(
        """INSERT INTO ledger.discrepancy_resolutions (discrepancy_id, resolution, resolved_by)
           VALUES ($1, $2, $3) ON CONFLICT DO NOTHING RETURNING 1""",
        discrepancy_id, resolution, resolved_by)
    return status is not None
