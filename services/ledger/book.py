"""The Postgres adapter of the ledger: book a batch of contribution schedules in one
transaction, idempotently (a replay books nothing twice), within the budget ceiling.

Booking takes a row lock on the budget allocation of every programme in the batch, so two
ledger processes book one after the other per allocation: the ceiling holds exactly. A
contribution that does not fit (or that arrives while older ones wait) is held, in order.

A worker-month booked again after a deregistration is a later generation of that month
(see ledger.check_generation). A batch is applied generation by generation: the months of generation
0 are booked and then cancelled, then generation 1 is booked and cancelled, and so on, which
is the order the validator emitted them in (a month is cancelled before it is paid again).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import asyncpg

from schemas.events import ContributionSchedule
from services.ledger.bills import BILL_LINES_SHARED
from services.ledger.budget import accrual_insert, lock_allocations
from services.ledger.sql import contribution_columns

_STAGE_COLUMNS = (
    "seq", "contribution_id", "nik", "period", "programme", "opd_code", "category", "kecamatan",
    "funding_source", "due_date", "amount_idr", "jkk_idr", "jkm_idr", "schedule_id",
    "registration_event_id", "occurred_at", "generation",
)
_CANCEL_COLUMNS = ("contribution_id", "schedule_id", "registration_event_id")

_CREATE_STAGING = """
CREATE TEMP TABLE IF NOT EXISTS stage_due (
    seq integer, contribution_id uuid, nik text, period text, programme text, opd_code text,
    category text, kecamatan text, funding_source text, due_date date, amount_idr bigint,
    jkk_idr bigint, jkm_idr bigint, schedule_id uuid, registration_event_id uuid,
    occurred_at timestamptz, generation integer
) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS stage_cancellations (
    contribution_id uuid, schedule_id uuid, registration_event_id uuid
) ON COMMIT DELETE ROWS;
"""

# New contributions (not booked, not held, the worker's month free) in arrival order; each
# allocation books the longest prefix that fits, unless older contributions already wait.
# The rest is held. The unique (nik, period, generation) and the primary keys make a replay
# a no-op. {free} says when the month is free for the generation being booked.
_BOOK = """
WITH fresh AS (
    SELECT DISTINCT ON (s.nik, s.period) s.*
      FROM stage_due s
     WHERE {free}
       AND NOT EXISTS (SELECT 1 FROM ledger.held_contributions h
                        WHERE h.contribution_id = s.contribution_id)
     ORDER BY s.nik, s.period, s.seq
), allocation AS MATERIALIZED (  -- a row or two: computed once, whatever the estimates
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
    INSERT INTO ledger.contributions (""" + contribution_columns() + """)
    SELECT """ + contribution_columns() + """
      FROM ranked WHERE fits ORDER BY seq
    ON CONFLICT DO NOTHING
    RETURNING contribution_id, programme, amount_idr, occurred_at, schedule_id
), accrued AS (
""" + accrual_insert("inserted") + """
), held AS (
    INSERT INTO ledger.held_contributions (""" + contribution_columns() + """, reason)
    SELECT """ + contribution_columns() + """,
           CASE WHEN allocated THEN 'budget_exceeded' ELSE 'no_allocation' END
      FROM ranked WHERE NOT fits ORDER BY seq
    ON CONFLICT DO NOTHING
    RETURNING programme, amount_idr
)
SELECT 'booked' AS outcome, programme, count(*) AS n, sum(amount_idr)::bigint AS amount_idr,
       NULL::float8[] AS ages
  FROM inserted GROUP BY programme
UNION ALL
SELECT 'held', programme, count(*), sum(amount_idr)::bigint, NULL FROM held GROUP BY programme
UNION ALL
SELECT 'ages', NULL, NULL, NULL, array_agg(extract(epoch FROM now() - occurred_at)::float8)
  FROM (SELECT DISTINCT schedule_id, occurred_at FROM inserted
         WHERE occurred_at IS NOT NULL) booked_schedules
"""
# Generation 0: nothing of the month is booked (the planner's anti-join on (nik, period)).
_BOOK_FIRST = _BOOK.format(free="""NOT EXISTS (SELECT 1 FROM ledger.contributions c
                        WHERE c.nik = s.nik AND c.period = s.period)""")
# Generation 1 and later: the rule the database checks again (ledger.check_generation).
_BOOK_AGAIN = _BOOK.format(free="ledger.generation_may_be_booked(s.nik, s.period, s.generation)")

# The advisory locks of the worker-months booked (every generation, as a budget release and
# ledger.check_generation take them), taken in one sorted sweep before anything of them
# is read, so that two writers never book one month for two payers nor deadlock on it.
_LOCK_WORKER_MONTHS = """
SELECT pg_advisory_xact_lock(key)
  FROM (SELECT DISTINCT ledger.worker_month_lock(nik, period) AS key
          FROM unnest($1::text[], $2::text[]) AS m(nik, period)
         ORDER BY key) keys
"""

# Neither booked nor held (both by id) and the month is taken: another payer holds it, or a
# later generation booked it. Record the attempt against the row that blocks it (the active
# one first), book nothing.
_DUPLICATES = """
INSERT INTO ledger.duplicate_attempts (contribution_id, nik, period, programme, opd_code,
    amount_idr, schedule_id, registration_event_id, held_by, generation)
SELECT DISTINCT ON (s.contribution_id) s.contribution_id, s.nik, s.period, s.programme,
       s.opd_code, s.amount_idr, s.schedule_id, s.registration_event_id, c.contribution_id,
       s.generation
  FROM stage_due s
  JOIN ledger.contributions c ON c.nik = s.nik AND c.period = s.period
 WHERE c.contribution_id <> s.contribution_id
   AND NOT EXISTS (SELECT 1 FROM ledger.contributions b
                    WHERE b.contribution_id = s.contribution_id)
   AND NOT EXISTS (SELECT 1 FROM ledger.held_contributions h
                    WHERE h.contribution_id = s.contribution_id)
 ORDER BY s.contribution_id,
          EXISTS (SELECT 1 FROM ledger.cancellations x
                   WHERE x.contribution_id = c.contribution_id),
          c.generation DESC
ON CONFLICT DO NOTHING
RETURNING programme
"""

# Neither booked, held nor a duplicate: nothing is dropped silently, it is recorded with why.
# A month booked again whose earlier generation the ledger never closed (the validator and
# the ledger disagree), a second generation-0 row of a month in this batch whose first row
# was held (nobody books the month yet, so it is no duplicate), or a contribution booked or
# held already under another schedule (the same worker, programme and month enrolled again:
# not a replay, which carries the same schedule id).
_REFUSED = """
INSERT INTO ledger.refused_contributions (contribution_id, nik, period, generation, programme,
    opd_code, funding_source, due_date, amount_idr, schedule_id, registration_event_id, reason)
SELECT DISTINCT ON (s.contribution_id, s.schedule_id) s.contribution_id, s.nik, s.period,
       s.generation, s.programme, s.opd_code, s.funding_source, s.due_date, s.amount_idr,
       s.schedule_id, s.registration_event_id,
       CASE WHEN EXISTS (SELECT 1 FROM ledger.contributions c
                          WHERE c.contribution_id = s.contribution_id)
            THEN 'booked_by_another_schedule'
            WHEN EXISTS (SELECT 1 FROM ledger.held_contributions h
                          WHERE h.contribution_id = s.contribution_id)
            THEN 'held_for_another_schedule'
            WHEN EXISTS (SELECT 1 FROM ledger.held_contributions h
                          WHERE h.nik = s.nik AND h.period = s.period
                            AND NOT EXISTS (SELECT 1 FROM ledger.held_resolutions r
                                             WHERE r.contribution_id = h.contribution_id))
            THEN CASE WHEN s.generation > 0 THEN 'earlier_generation_held'
                      ELSE 'month_held_for_another_payer' END
            WHEN s.generation > 0 THEN 'no_earlier_generation_closed'
            ELSE 'not_placed' END
  FROM stage_due s
 WHERE NOT EXISTS (SELECT 1 FROM ledger.contributions c
                    WHERE c.contribution_id = s.contribution_id
                      AND c.schedule_id = s.schedule_id)
   AND NOT EXISTS (SELECT 1 FROM ledger.held_contributions h
                    WHERE h.contribution_id = s.contribution_id
                      AND h.schedule_id = s.schedule_id)
   AND NOT EXISTS (SELECT 1 FROM ledger.duplicate_attempts d
                    WHERE d.contribution_id = s.contribution_id)
 ORDER BY s.contribution_id, s.schedule_id, s.seq
ON CONFLICT DO NOTHING
RETURNING programme, reason
"""

# A contribution whose amount (or components) is not its programme's configured monthly
# premium (ledger.programme_premiums) is refused before anything else sees it: it would
# otherwise be held and block every later contribution of the programme behind it.
_REFUSE_AMOUNT = """
WITH premium AS (
    SELECT DISTINCT ON (programme) programme, monthly_idr, jkk_idr, jkm_idr
      FROM ledger.programme_premiums
     WHERE programme IN (SELECT programme FROM stage_due)
     ORDER BY programme, premium_id DESC
), wrong AS (
    DELETE FROM stage_due s USING premium p
     WHERE s.programme = p.programme
       AND (s.amount_idr, s.jkk_idr, s.jkm_idr) <> (p.monthly_idr, p.jkk_idr, p.jkm_idr)
    RETURNING s.*
)
INSERT INTO ledger.refused_contributions (contribution_id, nik, period, generation, programme,
    opd_code, funding_source, due_date, amount_idr, schedule_id, registration_event_id, reason)
SELECT DISTINCT ON (contribution_id, schedule_id) contribution_id, nik, period, generation,
       programme, opd_code, funding_source, due_date, amount_idr, schedule_id,
       registration_event_id, 'amount_not_programme_premium'
  FROM wrong
 ORDER BY contribution_id, schedule_id, seq
ON CONFLICT DO NOTHING
RETURNING programme, reason
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

# Cancel what is booked and not yet cancelled: a reversal transfer each. A month not yet
# billed reverses its accrual (payable -> expense). A month already on an issued bill (or
# paid) cannot leave the frozen bill, whose whole amount is (or will be) paid to BPJS: its
# premium becomes a credit at BPJS (asset:bpjs_credit, carried over unless refunded),
# recorded in ledger.credits, never a silent loss. Either reversal frees its budget.
_CANCEL = """
WITH eligible AS (
    SELECT DISTINCT ON (c.contribution_id) c.contribution_id, c.programme, c.amount_idr,
           s.schedule_id, s.registration_event_id, l.bill_id
      FROM stage_cancellations s
      JOIN ledger.live_contributions c USING (contribution_id)
      LEFT JOIN ledger.bill_lines l ON l.contribution_id = c.contribution_id
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
           CASE WHEN e.bill_id IS NULL THEN 'liability:bpjs_payable:'
                ELSE 'asset:bpjs_credit:' END || e.programme,
           'expense:premium:' || e.programme, e.amount_idr, e.contribution_id
      FROM eligible e JOIN cancelled USING (contribution_id)
    ON CONFLICT DO NOTHING
    RETURNING 1
), credited AS (
    INSERT INTO ledger.credits (contribution_id, bill_id, programme, amount_idr)
    SELECT e.contribution_id, e.bill_id, e.programme, e.amount_idr
      FROM eligible e JOIN cancelled USING (contribution_id)
     WHERE e.bill_id IS NOT NULL
    ON CONFLICT DO NOTHING
    RETURNING 1
)
SELECT e.programme, count(*) AS reversed, count(e.bill_id) AS credited
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
    credited: Counter[str] = field(default_factory=Counter)  # billed months cancelled
    # The age of each registration event (schedule) some of whose months were booked.
    event_ages: list[float] = field(default_factory=list)
    # Contributions the ledger cannot place, recorded in ledger.refused_contributions (see
    # _REFUSED): by programme, and by reason.
    unbookable: Counter[str] = field(default_factory=Counter)
    refused_reasons: Counter[str] = field(default_factory=Counter)


@dataclass
class _Level:
    """The rows of one generation in a batch: its months to book, then to cancel."""

    due: list[tuple[object, ...]] = field(default_factory=list)
    cancels: list[tuple[object, ...]] = field(default_factory=list)


def _levels(schedules: list[ContributionSchedule]) -> dict[int, _Level]:
    """The batch's rows by generation; due rows numbered in arrival order."""
    levels: dict[int, _Level] = {}
    seq = 0
    for s in schedules:
        for c in s.contributions:
            level = levels.get(c.generation)
            if level is None:
                level = levels[c.generation] = _Level()
            if s.kind == "due":
                seq += 1
                level.due.append((
                    seq, c.contribution_id, s.nik, c.period, s.programme, s.opd_code,
                    s.category.value, s.kecamatan, s.funding_source, c.due_date, c.amount_idr,
                    c.components.jkk, c.components.jkm, s.schedule_id, s.registration_event_id,
                    s.occurred_at, c.generation,
                ))
            else:
                level.cancels.append((c.contribution_id, s.schedule_id, s.registration_event_id))
    return levels


# The booking statements sort and hash a batch (24,000 rows and more): in memory, not in
# temporary files; and compiled by JIT they cost more than they run.
_SESSION = "SET work_mem = '64MB'; SET jit = off;"


_INDEX_PROBES_ONLY = "SET LOCAL enable_hashjoin = off; SET LOCAL enable_mergejoin = off;"
_ANY_JOIN = "RESET enable_hashjoin; RESET enable_mergejoin;"


async def prepare(connection: asyncpg.Connection) -> None:
    """Per-connection set-up (session settings, temporary staging tables)."""
    await connection.execute(_SESSION)
    await connection.execute(_CREATE_STAGING)


async def lock_worker_months(
    connection: asyncpg.Connection, months: list[tuple[str, str]]
) -> None:
    """Take the advisory locks of these (NIK, period) worker-months, in one sorted sweep."""
    if months:
        await connection.execute(
            _LOCK_WORKER_MONTHS, [m[0] for m in months], [m[1] for m in months])


async def book_schedules(
    connection: asyncpg.Connection, schedules: list[ContributionSchedule]
) -> BatchResult:
    """Book due schedules and apply cancellations in one transaction, generation by
    generation (within one, in the order given).

    The connection must have been through :func:`prepare`.
    """
    result = BatchResult()
    levels = _levels(schedules)
    if not levels:
        return result
    async with connection.transaction():
        # Every allocation this batch may move, locked in one order (no deadlock between
        # two ledger processes); booking and releasing held ones queue behind this lock.
        await lock_allocations(connection, {(s.programme, s.funding_source) for s in schedules})
        # Then every worker-month booked: a writer that books the same month (another
        # ledger process, a budget release) waits, and this batch then sees its row.
        await lock_worker_months(connection, [(str(row[2]), str(row[3]))
                                              for level in levels.values() for row in level.due])
        staged = cancels_staged = False
        for generation in sorted(levels):
            level = levels[generation]
            if level.due:
                if staged:
                    await connection.execute("TRUNCATE stage_due")
                await _book_due(connection, level.due, generation, result)
                staged = True
            if level.cancels:
                if cancels_staged:
                    await connection.execute("TRUNCATE stage_cancellations")
                else:
                    # Bills being issued now finish first; no bill is issued until we commit.
                    await connection.execute(BILL_LINES_SHARED)
                await _cancel(connection, level.cancels, result)
                cancels_staged = True
    return result


async def _book_due(
    connection: asyncpg.Connection, due: list[tuple[object, ...]], generation: int,
    result: BatchResult,
) -> None:
    await connection.copy_records_to_table("stage_due", records=due, columns=_STAGE_COLUMNS)
    _count_refused(result, await connection.fetch(_REFUSE_AMOUNT))
    # Fresh statistics replan the cached statements below for this batch's size
    # (a plan made for a batch of 20 rows must not run a batch of 24,000).
    await connection.execute("ANALYZE stage_due")
    for row in await connection.fetch(_BOOK_FIRST if generation == 0 else _BOOK_AGAIN):
        if row["outcome"] == "ages":
            result.event_ages.extend(row["ages"] or ())
        elif row["outcome"] == "booked":
            result.booked[row["programme"]] += row["n"]
            result.booked_idr[row["programme"]] += row["amount_idr"]
        else:
            result.held[row["programme"]] += row["n"]
            result.held_idr[row["programme"]] += row["amount_idr"]
    # The two passes below probe the tables' indexes once per staged row: a hash or merge
    # join would read all of ledger.contributions once per batch (a cost growing with the
    # table, not the batch). Set for these statements only, so their plans always see it.
    await connection.execute(_INDEX_PROBES_ONLY)
    for row in await connection.fetch(_DUPLICATES):
        result.duplicates[row["programme"]] += 1
    _count_refused(result, await connection.fetch(_REFUSED))
    await connection.execute(_ANY_JOIN)


def _count_refused(result: BatchResult, rows: list[asyncpg.Record]) -> None:
    for row in rows:
        result.unbookable[row["programme"]] += 1
        result.refused_reasons[row["reason"]] += 1


async def _cancel(
    connection: asyncpg.Connection, cancels: list[tuple[object, ...]], result: BatchResult
) -> None:
    await connection.copy_records_to_table(
        "stage_cancellations", records=cancels, columns=_CANCEL_COLUMNS
    )
    await connection.execute("ANALYZE stage_cancellations")
    result.held_cancelled += len(await connection.fetch(_CANCEL_HELD))
    for row in await connection.fetch(_CANCEL):
        result.reversed[row["programme"]] += row["reversed"]
        if row["credited"]:
            result.credited[row["programme"]] += row["credited"]

