"""The Postgres adapter of the ledger: book a batch of contribution schedules in one
transaction, idempotently (a replay books nothing twice), within the budget ceiling.

Booking takes a row lock on the budget allocation of every programme in the batch, so two
ledger processes book one after the other per allocation: the ceiling holds exactly. A
contribution that does not fit (or that arrives while older ones wait) is held, in order.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import asyncpg

from schemas.events import ContributionSchedule
from services.ledger.bills import BILL_LINES_SHARED
from services.ledger.budget import lock_allocations

_STAGE_COLUMNS = (
    "seq", "contribution_id", "nik", "period", "programme", "opd_code", "category", "kecamatan",
    "funding_source", "due_date", "amount_idr", "jkk_idr", "jkm_idr", "schedule_id",
    "registration_event_id", "occurred_at",
)
_CANCEL_COLUMNS = ("contribution_id", "schedule_id", "registration_event_id")

_CREATE_STAGING = """
CREATE TEMP TABLE IF NOT EXISTS stage_due (
    seq integer, contribution_id uuid, nik text, period text, programme text, opd_code text,
    category text, kecamatan text, funding_source text, due_date date, amount_idr bigint,
    jkk_idr bigint, jkm_idr bigint, schedule_id uuid, registration_event_id uuid,
    occurred_at timestamptz
) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS stage_cancellations (
    contribution_id uuid, schedule_id uuid, registration_event_id uuid
) ON COMMIT DELETE ROWS;
"""

# New contributions (not booked, not held, the worker's month free) in arrival order; each
# allocation books the longest prefix that fits, unless older contributions already wait.
# The rest is held. The unique (nik, period) and the primary keys make a replay a no-op.
_BOOK = """
WITH fresh AS (
    SELECT DISTINCT ON (s.nik, s.period) s.*
      FROM stage_due s
     WHERE NOT EXISTS (SELECT 1 FROM ledger.contributions c
                        WHERE c.nik = s.nik AND c.period = s.period)
       AND NOT EXISTS (SELECT 1 FROM ledger.held_contributions h
                        WHERE h.contribution_id = s.contribution_id)
     ORDER BY s.nik, s.period, s.seq
), allocation AS (
    SELECT a.programme, a.funding_source, a.allocated_idr - a.booked_idr AS remaining,
           EXISTS (SELECT 1 FROM ledger.held_contributions h
                    WHERE h.programme = a.programme AND h.funding_source = a.funding_source
                      AND NOT EXISTS (SELECT 1 FROM ledger.held_resolutions r
                                       WHERE r.contribution_id = h.contribution_id)) AS waiting
      FROM ledger.budget_allocations a
     WHERE (a.programme, a.funding_source) IN (SELECT programme, funding_source FROM fresh)
), ranked AS (
    SELECT f.*, a.programme IS NOT NULL AS allocated,
           coalesce(NOT a.waiting AND sum(f.amount_idr) OVER (
               PARTITION BY f.programme, f.funding_source ORDER BY f.seq
               ROWS UNBOUNDED PRECEDING) <= a.remaining, false) AS fits
      FROM fresh f
      LEFT JOIN allocation a USING (programme, funding_source)
), inserted AS (
    INSERT INTO ledger.contributions (
        contribution_id, nik, period, programme, opd_code, category, kecamatan,
        funding_source, due_date, amount_idr, jkk_idr, jkm_idr, schedule_id,
        registration_event_id, occurred_at)
    SELECT contribution_id, nik, period, programme, opd_code, category, kecamatan,
           funding_source, due_date, amount_idr, jkk_idr, jkm_idr, schedule_id,
           registration_event_id, occurred_at
      FROM ranked WHERE fits ORDER BY seq
    ON CONFLICT DO NOTHING
    RETURNING contribution_id, programme, amount_idr, occurred_at
), accrued AS (
    INSERT INTO ledger.transfers (transfer_id, kind, debit_account, credit_account,
                                  amount_idr, contribution_id)
    SELECT md5('accrual:' || contribution_id::text)::uuid, 'accrual',
           'expense:premium:' || programme, 'liability:bpjs_payable:' || programme,
           amount_idr, contribution_id
      FROM inserted
    ON CONFLICT DO NOTHING
), held AS (
    INSERT INTO ledger.held_contributions (
        contribution_id, nik, period, programme, opd_code, category, kecamatan,
        funding_source, due_date, amount_idr, jkk_idr, jkm_idr, schedule_id,
        registration_event_id, occurred_at, reason)
    SELECT contribution_id, nik, period, programme, opd_code, category, kecamatan,
           funding_source, due_date, amount_idr, jkk_idr, jkm_idr, schedule_id,
           registration_event_id, occurred_at,
           CASE WHEN allocated THEN 'budget_exceeded' ELSE 'no_allocation' END
      FROM ranked WHERE NOT fits ORDER BY seq
    ON CONFLICT DO NOTHING
    RETURNING programme, amount_idr
)
SELECT 'booked' AS outcome, programme, count(*) AS n, sum(amount_idr)::bigint AS amount_idr,
       array_agg(extract(epoch FROM now() - occurred_at)::float8) FILTER
           (WHERE occurred_at IS NOT NULL) AS ages
  FROM inserted GROUP BY programme
UNION ALL
SELECT 'held', programme, count(*), sum(amount_idr)::bigint, NULL FROM held GROUP BY programme
"""

# Another payer already holds the worker's month: record the attempt, book nothing.
_DUPLICATES = """
INSERT INTO ledger.duplicate_attempts (contribution_id, nik, period, programme, opd_code,
    amount_idr, schedule_id, registration_event_id, held_by)
SELECT DISTINCT ON (s.contribution_id) s.contribution_id, s.nik, s.period, s.programme,
       s.opd_code, s.amount_idr, s.schedule_id, s.registration_event_id, c.contribution_id
  FROM stage_due s
  JOIN ledger.contributions c ON c.nik = s.nik AND c.period = s.period
 WHERE c.contribution_id <> s.contribution_id
 ORDER BY s.contribution_id
ON CONFLICT DO NOTHING
RETURNING programme
"""

# A held contribution that is cancelled will never be booked.
_CANCEL_HELD = """
INSERT INTO ledger.held_resolutions (contribution_id, outcome, schedule_id)
SELECT DISTINCT ON (s.contribution_id) s.contribution_id, 'cancelled', s.schedule_id
  FROM stage_cancellations s
  JOIN ledger.held_contributions h ON h.contribution_id = s.contribution_id
 WHERE NOT EXISTS (SELECT 1 FROM ledger.held_resolutions r
                    WHERE r.contribution_id = s.contribution_id)
 ORDER BY s.contribution_id
ON CONFLICT DO NOTHING
RETURNING contribution_id
"""

# A month already on an issued bill (or paid) is not cancelled: the bill is frozen. The
# attempt is recorded for a person to see.
_CANCEL_REFUSED = """
INSERT INTO ledger.cancellations_refused (contribution_id, schedule_id, registration_event_id,
                                          reason)
SELECT DISTINCT ON (s.contribution_id, s.schedule_id) s.contribution_id, s.schedule_id,
       s.registration_event_id,
       CASE WHEN EXISTS (SELECT 1 FROM ledger.transfers t
                          WHERE t.contribution_id = s.contribution_id AND t.kind = 'settlement')
            THEN 'paid' ELSE 'billed' END
  FROM stage_cancellations s
 WHERE EXISTS (SELECT 1 FROM ledger.bill_lines l WHERE l.contribution_id = s.contribution_id)
   AND NOT EXISTS (SELECT 1 FROM ledger.cancellations x
                    WHERE x.contribution_id = s.contribution_id)
 ORDER BY s.contribution_id, s.schedule_id
ON CONFLICT DO NOTHING
RETURNING contribution_id
"""

# Cancel what is booked, not yet cancelled and not yet billed: a reversal transfer each.
_CANCEL = """
WITH eligible AS (
    SELECT DISTINCT ON (c.contribution_id) c.contribution_id, c.programme, c.amount_idr,
           s.schedule_id, s.registration_event_id
      FROM stage_cancellations s
      JOIN ledger.contributions c USING (contribution_id)
     WHERE NOT EXISTS (SELECT 1 FROM ledger.cancellations x
                        WHERE x.contribution_id = c.contribution_id)
       AND NOT EXISTS (SELECT 1 FROM ledger.bill_lines l
                        WHERE l.contribution_id = c.contribution_id)
       AND NOT EXISTS (SELECT 1 FROM ledger.transfers t
                        WHERE t.contribution_id = c.contribution_id AND t.kind = 'settlement')
     ORDER BY c.contribution_id
), cancelled AS (
    INSERT INTO ledger.cancellations (contribution_id, schedule_id, registration_event_id)
    SELECT contribution_id, schedule_id, registration_event_id FROM eligible
    ON CONFLICT DO NOTHING
    RETURNING contribution_id
), reversed AS (
    INSERT INTO ledger.transfers (transfer_id, kind, debit_account, credit_account,
                                  amount_idr, contribution_id)
    SELECT md5('reversal:' || e.contribution_id::text)::uuid, 'reversal',
           'liability:bpjs_payable:' || e.programme, 'expense:premium:' || e.programme,
           e.amount_idr, e.contribution_id
      FROM eligible e JOIN cancelled USING (contribution_id)
    ON CONFLICT DO NOTHING
    RETURNING 1
)
SELECT e.programme, count(*) AS reversed
  FROM eligible e JOIN cancelled USING (contribution_id) GROUP BY e.programme
"""


@dataclass
class BatchResult:
    booked: Counter[str] = field(default_factory=Counter)
    booked_idr: Counter[str] = field(default_factory=Counter)
    held: Counter[str] = field(default_factory=Counter)
    held_idr: Counter[str] = field(default_factory=Counter)
    duplicates: Counter[str] = field(default_factory=Counter)
    reversed: Counter[str] = field(default_factory=Counter)
    held_cancelled: int = 0
    cancellations_refused: int = 0
    event_ages: list[float] = field(default_factory=list)


def _due_rows(schedules: list[ContributionSchedule]) -> list[tuple[object, ...]]:
    rows: list[tuple[object, ...]] = []
    seq = 0
    for s in schedules:
        if s.kind != "due":
            continue
        for c in s.contributions:
            seq += 1
            rows.append((
                seq, c.contribution_id, s.nik, c.period, s.programme, s.opd_code,
                s.category.value, s.kecamatan, s.funding_source, c.due_date, c.amount_idr,
                c.components.jkk, c.components.jkm, s.schedule_id, s.registration_event_id,
                s.occurred_at,
            ))
    return rows


def _cancel_rows(schedules: list[ContributionSchedule]) -> list[tuple[object, ...]]:
    return [
        (c.contribution_id, s.schedule_id, s.registration_event_id)
        for s in schedules
        if s.kind == "cancelled"
        for c in s.contributions
    ]


async def prepare(connection: asyncpg.Connection) -> None:
    """Per-connection set-up (temporary staging tables)."""
    await connection.execute(_CREATE_STAGING)


async def book_schedules(
    connection: asyncpg.Connection, schedules: list[ContributionSchedule]
) -> BatchResult:
    """Book due schedules and apply cancellations, in the order given, in one transaction.

    The connection must have been through :func:`prepare`.
    """
    result = BatchResult()
    due = _due_rows(schedules)
    cancels = _cancel_rows(schedules)
    if not due and not cancels:
        return result
    async with connection.transaction():
        # Every allocation this batch may move, locked in one order (no deadlock between
        # two ledger processes); booking and releasing held ones queue behind this lock.
        await lock_allocations(connection, {(s.programme, s.funding_source) for s in schedules})
        if due:
            await connection.copy_records_to_table(
                "stage_due", records=due, columns=_STAGE_COLUMNS
            )
            # Fresh statistics replan the cached statements below for this batch's size
            # (a plan made for a batch of 20 rows must not run a batch of 24,000).
            await connection.execute("ANALYZE stage_due")
            for row in await connection.fetch(_BOOK):
                if row["outcome"] == "booked":
                    result.booked[row["programme"]] += row["n"]
                    result.booked_idr[row["programme"]] += row["amount_idr"]
                    result.event_ages.extend(row["ages"] or ())
                else:
                    result.held[row["programme"]] += row["n"]
                    result.held_idr[row["programme"]] += row["amount_idr"]
            for row in await connection.fetch(_DUPLICATES):
                result.duplicates[row["programme"]] += 1
        if cancels:
            # Bills being issued now finish first; no bill is issued until we commit.
            await connection.execute(BILL_LINES_SHARED)
            await connection.copy_records_to_table(
                "stage_cancellations", records=cancels, columns=_CANCEL_COLUMNS
            )
            await connection.execute("ANALYZE stage_cancellations")
            result.held_cancelled = len(await connection.fetch(_CANCEL_HELD))
            result.cancellations_refused = len(await connection.fetch(_CANCEL_REFUSED))
            for row in await connection.fetch(_CANCEL):
                result.reversed[row["programme"]] += row["reversed"]
    return result
