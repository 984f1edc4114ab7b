"""Corrections finance makes to money already in the journal, each by a new entry (never an
edit): a receipt voided (a payment confirmed twice under two ids), and a refund BPJS paid
back, recorded when the bank statement shows it."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date
from uuid import UUID

import asyncpg

from services.domain.money import rupiah
from services.domain.schedule import derived_id
from services.ledger.bills import bill_lock_sql
from services.ledger.payments import ResolutionError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Void:
    payment_id: UUID
    programme: str
    amount_idr: int


# The receipt's two accounts, swapped: the money goes back to the cash it came from.
_VOID = """
INSERT INTO ledger.transfers (transfer_id, kind, debit_account, credit_account, amount_idr,
                              reference, payment_id)
SELECT md5('void:' || $1::uuid::text)::uuid, 'void', t.credit_account, t.debit_account,
       t.amount_idr, t.reference, t.payment_id
  FROM ledger.transfers t
 WHERE t.payment_id = $1 AND t.kind = 'receipt'
"""


async def void_payment(
    connection: asyncpg.Connection, payment_id: UUID, *, reason: str, voided_by: str
) -> Void | None:
    """Void a receipt whose money still waits in suspense (an open discrepancy: a duplicate
    confirmation, an unknown bill): a reversing entry takes it back to cash and the
    discrepancy is resolved as voided. Returns None when it was voided before; raises
    :class:`ResolutionError` when it cannot be voided (it paid bills, or its money moved)."""
    async with connection.transaction():
        payment = await connection.fetchrow(
            "SELECT programme, period, amount_idr, reference FROM ledger.payments "
            "WHERE payment_id = $1", payment_id)
        if payment is None:
            raise ResolutionError(f"no payment {payment_id}")
        await connection.execute(bill_lock_sql(), payment["programme"], payment["period"])
        if await connection.fetchval(
                "SELECT 1 FROM ledger.payment_voids WHERE payment_id = $1", payment_id):
            return None
        settled = await connection.fetchval(
            "SELECT count(*) FROM ledger.bill_settlements WHERE payment_id = $1", payment_id)
        if settled:
            raise ResolutionError(
                f"payment {payment['reference']} paid {settled} bill(s): a payment that "
                "settled bills is not voided; BPJS refunds what it received twice")
        discrepancy = await connection.fetchrow(
            """SELECT d.discrepancy_id, r.action
                 FROM ledger.discrepancies d
                 LEFT JOIN ledger.discrepancy_resolutions r USING (discrepancy_id)
                WHERE d.payment_id = $1""", payment_id)
        if discrepancy is not None and discrepancy["action"] is not None:
            raise ResolutionError(
                f"the money of payment {payment['reference']} was already "
                f"{discrepancy['action'].replace('_', ' ')}: nothing is left to void")
        amount = int(payment["amount_idr"])
        await connection.execute(
            """INSERT INTO ledger.payment_voids (payment_id, amount_idr, reason, voided_by)
               VALUES ($1, $2, $3, $4)""", payment_id, amount, reason, voided_by)
        await connection.execute(_VOID, payment_id)
        if discrepancy is not None:
            await connection.execute(
                """INSERT INTO ledger.discrepancy_resolutions (discrepancy_id, resolution,
                       resolved_by, action)
                   VALUES ($1, $2, $3, 'voided')""",
                discrepancy["discrepancy_id"], f"receipt voided: {reason}", voided_by)
    log.warning("receipt of %s %s voided: Rp%s back to cash", payment["programme"],
                payment["period"], f"{amount:,}")
    return Void(payment_id, payment["programme"], amount)


@dataclass(frozen=True)
class RefundReceived:
    refund_id: UUID
    programme: str
    amount_idr: int
    still_due_idr: int


_REFUND_DUE = """
SELECT coalesce(sum(CASE WHEN debit_account = $1 THEN amount_idr::numeric
                         ELSE -amount_idr::numeric END), 0)
  FROM ledger.transfers WHERE debit_account = $1 OR credit_account = $1
"""

_CASH_BACK = """
INSERT INTO ledger.transfers (transfer_id, kind, debit_account, credit_account, amount_idr,
                              reference)
VALUES ($1, 'refund_received',
        'asset:cash:' || coalesce((SELECT min(a.funding_source) FROM ledger.budget_allocations a
                                    WHERE a.programme = $2), 'unassigned'),
        'asset:refund_due:' || $2, $3::bigint, $4)
"""


async def record_refund_received(
    connection: asyncpg.Connection, programme: str, amount_idr: int, *, bank_reference: str,
    received_on: date, recorded_by: str,
) -> RefundReceived | None:
    """Record money BPJS paid back (a bank statement line): ``asset:refund_due`` of the
    programme is cleared against cash by that amount. Returns None when the statement line
    was recorded before; raises :class:`ResolutionError` when more comes back than is due."""
    if amount_idr <= 0:
        raise ResolutionError("a refund received is a positive amount of rupiah")
    account = f"asset:refund_due:{programme}"
    refund_id = derived_id("refund-received", bank_reference)
    async with connection.transaction():
        await connection.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended('refund-due:' || $1, 0))", programme)
        if await connection.fetchval(
                "SELECT 1 FROM ledger.refunds_received WHERE bank_reference = $1",
                bank_reference):
            return None
        due = int(await connection.fetchval(_REFUND_DUE, account))
        if amount_idr > due:
            raise ResolutionError(
                f"{rupiah(amount_idr)} received but only {rupiah(due)} is due from BPJS for "
                f"{programme}: record the refunds due first (iuran bill refund-credit, "
                "iuran discrepancy resolve --refund)")
        await connection.execute(
            """INSERT INTO ledger.refunds_received (refund_id, programme, amount_idr,
                   bank_reference, received_on, recorded_by)
               VALUES ($1, $2, $3, $4, $5, $6)""",
            refund_id, programme, amount_idr, bank_reference, received_on, recorded_by)
        await connection.execute(_CASH_BACK, refund_id, programme, amount_idr, bank_reference)
    log.info("refund of Rp%s from BPJS for %s recorded (Rp%s still due)", f"{amount_idr:,}",
             programme, f"{due - amount_idr:,}")
    return RefundReceived(refund_id, programme, amount_idr, due - amount_idr)
