"""Monthly bills ("tagihan") to BPJS: frozen lists of the contributions of one programme
and month. Contributions booked after a bill was issued go to a supplementary bill."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date
from uuid import UUID

import asyncpg

from services.domain.periods import due_date
from services.domain.programme import Programme
from services.domain.schedule import derived_id

log = logging.getLogger(__name__)


class BillError(Exception):
    """A bill that cannot be issued."""


@dataclass(frozen=True)
class Bill:
    bill_id: UUID
    programme: str
    period: str
    sequence: int
    due_date: date
    lines: int
    amount_idr: int


# Issuing a bill (exclusive) and cancelling contributions (shared) exclude each other, so a
# month is never cancelled while it is being put on a bill. Advisory: no table privilege.
BILL_LINES_EXCLUSIVE = "SELECT pg_advisory_xact_lock(hashtextextended('bill-lines', 0))"
BILL_LINES_SHARED = "SELECT pg_advisory_xact_lock_shared(hashtextextended('bill-lines', 0))"


def bill_lock_sql(programme_param: str = "$1", period_param: str = "$2") -> str:
    """The advisory lock that serialises issuing and paying the bills of one month."""
    return (f"SELECT pg_advisory_xact_lock(hashtextextended("
            f"'bill:' || {programme_param} || ':' || {period_param}, 0))")


_ISSUE = """
WITH unbilled AS (
    SELECT c.contribution_id, c.amount_idr
      FROM ledger.contributions c
     WHERE c.programme = $1 AND c.period = $2
       AND NOT EXISTS (SELECT 1 FROM ledger.cancellations x
                        WHERE x.contribution_id = c.contribution_id)
       AND NOT EXISTS (SELECT 1 FROM ledger.bill_lines l
                        WHERE l.contribution_id = c.contribution_id)
), header AS (
    INSERT INTO ledger.bills (bill_id, programme, period, sequence, due_date, lines,
                              amount_idr, issued_by)
    SELECT $3::uuid, $1, $2, $4, $5, count(*), sum(amount_idr), $6
      FROM unbilled
    HAVING count(*) > 0
    RETURNING bill_id, lines, amount_idr
), lines AS (
    INSERT INTO ledger.bill_lines (contribution_id, bill_id, amount_idr)
    SELECT u.contribution_id, h.bill_id, u.amount_idr FROM unbilled u, header h
)
SELECT bill_id, lines, amount_idr FROM header
"""


async def issue_bill(
    connection: asyncpg.Connection, programme: Programme, period: str, *, issued_by: str
) -> Bill | None:
    """Issue the next bill of the month: every active contribution not on an earlier bill.

    Returns None when there is nothing left to bill. The bill is due on the programme's due
    day of the month (the next working day when that is a weekend or holiday)."""
    due = due_date(period, programme.premium.due_day, programme.holidays)
    async with connection.transaction():
        await connection.execute(bill_lock_sql(), programme.id, period)
        # No cancellation may land between choosing the lines and committing them.
        await connection.execute(BILL_LINES_EXCLUSIVE)
        sequence = await connection.fetchval(
            """SELECT coalesce(max(sequence), 0) + 1 FROM ledger.bills
                WHERE programme = $1 AND period = $2""", programme.id, period)
        bill_id = derived_id("bill", programme.id, period, str(sequence))
        row = await connection.fetchrow(
            _ISSUE, programme.id, period, bill_id, sequence, due, issued_by)
    if row is None:
        return None
    log.info("issued bill %s #%d of %s: %d lines, Rp%s", period, sequence, programme.id,
             row["lines"], f"{row['amount_idr']:,}")
    return Bill(row["bill_id"], programme.id, period, sequence, due, row["lines"],
                row["amount_idr"])
