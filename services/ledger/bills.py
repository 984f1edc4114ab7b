"""Bills ("tagihan") to BPJS: frozen lists of contributions. A programme billed monthly
gets one bill per month (its contributions of that month); a prepaid programme one bill at
enrolment with N months of each worker on it, due the day it is issued and charged to the
fiscal year of that day. Contributions booked after a bill was issued go to a supplementary
bill (sequence 2, 3, ...)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date
from uuid import UUID

import asyncpg

from services.domain.periods import due_date, period_of
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
    billing: str = "monthly"
    workers: int = 0  # distinct NIKs on the bill (a prepaid bill has months per worker)
    fiscal_year: int | None = None


# Issuing a bill (exclusive) and cancelling contributions (shared) exclude each other, so a
# month is never cancelled while it is being put on a bill. Advisory: no table privilege.
BILL_LINES_EXCLUSIVE = "SELECT pg_advisory_xact_lock(hashtextextended('bill-lines', 0))"
BILL_LINES_SHARED = "SELECT pg_advisory_xact_lock_shared(hashtextextended('bill-lines', 0))"


def bill_lock_sql(programme_param: str = "$1", period_param: str = "$2") -> str:
    """The advisory lock that serialises issuing and paying the bills of one month."""
    return (f"SELECT pg_advisory_xact_lock(hashtextextended("
            f"'bill:' || {programme_param} || ':' || {period_param}, 0))")


async def record_billing(connection: asyncpg.Connection, programme: Programme) -> None:
    """Record the programme's billing mode for the finance views (once: a mode is never
    changed under bills already issued; a different configured mode is logged)."""
    billing = programme.billing
    recorded = await connection.fetchrow(
        """WITH inserted AS (
               INSERT INTO ledger.programme_billing (programme, mode, months)
               VALUES ($1, $2, $3) ON CONFLICT DO NOTHING RETURNING mode, months)
           SELECT mode, months FROM inserted
           UNION ALL
           SELECT mode, months FROM ledger.programme_billing WHERE programme = $1
           LIMIT 1""", programme.id, billing.mode, billing.months)
    if recorded is not None and (recorded["mode"], recorded["months"]) != (
            billing.mode, billing.months):
        log.warning("programme %s: billing %s/%d months in the file, %s/%d in the ledger; kept",
                    programme.id, billing.mode, billing.months, recorded["mode"],
                    recorded["months"])


_ISSUE = """
WITH unbilled AS (
    SELECT c.contribution_id, c.amount_idr
      FROM ledger.live_contributions c
     WHERE c.programme = $1 AND c.period = $2
       AND NOT EXISTS (SELECT 1 FROM ledger.bill_lines l
                        WHERE l.contribution_id = c.contribution_id)
       AND ($7::boolean IS FALSE OR EXISTS (
            SELECT 1 FROM finance.bpjs_members m
             WHERE m.programme = c.programme AND m.nik = c.nik AND m.status = 'verified'
               AND m.effective_period <= c.period))
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


def check_bill_date(programme: Programme, day: date, today: date) -> None:
    """A bill is dated today or earlier, in the programme's fiscal year, while that year is
    open (until its last day, in the programme's time zone): after it, what the allocation
    did not pay is no longer its to pay."""
    if today.year > programme.fiscal_year:
        raise BillError(f"fiscal year {programme.fiscal_year} of {programme.id} is closed "
                        f"(today is {today}, {programme.timezone}): no bill is charged to it "
                        "any more")
    if day.year != programme.fiscal_year:
        raise BillError(f"{programme.id} is funded from fiscal year {programme.fiscal_year}; "
                        f"a bill on {day} would be charged to {day.year}")
    if day > today:
        raise BillError(f"a bill is dated today ({today}, {programme.timezone}) or earlier, "
                        f"not {day}")


async def issue_bill(
    connection: asyncpg.Connection, programme: Programme, period: str, *, issued_by: str,
    today: date | None = None,
) -> Bill | None:
    """Issue the next bill of the month: every active contribution not on an earlier bill
    (of a worker BPJS verified, when the programme's bills wait for BPJS).
    It is issued ``today`` (default: the programme's day now), which must lie in the
    programme's open fiscal year (:func:`check_bill_date`).

    Returns None when there is nothing left to bill. The bill is due on the programme's due
    day of the month (the next working day when that is a weekend or holiday)."""
    if programme.billing.mode != "monthly":
        raise BillError(f"{programme.id} is billed {programme.billing.mode}: issue its bill "
                        "with the day it is billed and paid (issue_prepaid_bill)")
    today = today or programme.today()
    check_bill_date(programme, today, today)
    due = due_date(period, programme.premium.due_day, programme.holidays)
    await record_billing(connection, programme)
    async with connection.transaction():
        await connection.execute(bill_lock_sql(), programme.id, period)
        # No cancellation may land between choosing the lines and committing them.
        await connection.execute(BILL_LINES_EXCLUSIVE)
        sequence = await connection.fetchval(
            """SELECT coalesce(max(sequence), 0) + 1 FROM ledger.bills
                WHERE programme = $1 AND period = $2""", programme.id, period)
        bill_id = derived_id("bill", programme.id, period, str(sequence))
        row = await connection.fetchrow(
            _ISSUE, programme.id, period, bill_id, sequence, due, issued_by,
            programme.bpjs.bill_only_verified)
    if row is None:
        return None
    log.info("issued bill %s #%d of %s: %d lines, Rp%s", period, sequence, programme.id,
             row["lines"], f"{row['amount_idr']:,}")
    return Bill(row["bill_id"], programme.id, period, sequence, due, row["lines"],
                row["amount_idr"], workers=row["lines"])


# The first N unbilled months (by period) of each worker of the programme, on one bill.
_ISSUE_PREPAID = """
WITH unbilled AS (
    SELECT c.contribution_id, c.amount_idr,
           row_number() OVER (PARTITION BY c.nik ORDER BY c.period, c.generation) AS n
      FROM ledger.live_contributions c
     WHERE c.programme = $1
       AND NOT EXISTS (SELECT 1 FROM ledger.bill_lines l
                        WHERE l.contribution_id = c.contribution_id)
       AND ($9::boolean IS FALSE OR EXISTS (
            SELECT 1 FROM finance.bpjs_members m
             WHERE m.programme = c.programme AND m.nik = c.nik AND m.status = 'verified'
               AND m.effective_period <= c.period))
), chosen AS (
    SELECT contribution_id, amount_idr FROM unbilled WHERE n <= $7
), header AS (
    INSERT INTO ledger.bills (bill_id, programme, period, sequence, due_date, lines,
                              amount_idr, issued_by, billing, fiscal_year)
    SELECT $3::uuid, $1, $2, $4, $5, count(*), sum(amount_idr), $6, 'prepaid', $8
      FROM chosen
    HAVING count(*) > 0
    RETURNING bill_id, lines, amount_idr
), lines AS (
    INSERT INTO ledger.bill_lines (contribution_id, bill_id, amount_idr)
    SELECT u.contribution_id, h.bill_id, u.amount_idr FROM chosen u, header h
)
SELECT bill_id, lines, amount_idr FROM header
"""


async def issue_prepaid_bill(
    connection: asyncpg.Connection, programme: Programme, billed_on: date, *, issued_by: str,
    today: date | None = None,
) -> Bill | None:
    """Issue the prepaid bill of a programme on the day it is billed and paid: the first
    ``billing.months`` unbilled months of every enrolled worker. Later enrolments get a
    supplementary bill when this runs again. The bill's month is that of ``billed_on``, it
    is due that day and charged to its fiscal year, which must be the programme's and still
    open ``today`` (default: the programme's day now; see :func:`check_bill_date`).

    Returns None when there is nothing left to bill."""
    if programme.billing.mode != "prepaid":
        raise BillError(f"{programme.id} is billed monthly: issue one bill per month")
    check_bill_date(programme, billed_on, today or programme.today())
    period = period_of(billed_on)
    await record_billing(connection, programme)
    async with connection.transaction():
        await connection.execute(bill_lock_sql(), programme.id, period)
        await connection.execute(BILL_LINES_EXCLUSIVE)
        sequence = await connection.fetchval(
            """SELECT coalesce(max(sequence), 0) + 1 FROM ledger.bills
                WHERE programme = $1 AND billing = 'prepaid'""", programme.id)
        bill_id = derived_id("bill", programme.id, period, str(sequence))
        row = await connection.fetchrow(
            _ISSUE_PREPAID, programme.id, period, bill_id, sequence, billed_on, issued_by,
            programme.billing.months, billed_on.year, programme.bpjs.bill_only_verified)
        workers = 0 if row is None else await connection.fetchval(
            """SELECT count(DISTINCT c.nik) FROM ledger.bill_lines l
                 JOIN ledger.contributions c USING (contribution_id)
                WHERE l.bill_id = $1""", bill_id)
    if row is None:
        return None
    log.info("issued prepaid bill #%d of %s on %s: %s workers, %s lines, Rp%s", sequence,
             programme.id, billed_on, f"{workers:,}", f"{row['lines']:,}",
             f"{row['amount_idr']:,}")
    return Bill(row["bill_id"], programme.id, period, sequence, billed_on, row["lines"],
                row["amount_idr"], billing="prepaid", workers=workers,
                fiscal_year=billed_on.year)
