"""The Postgres adapter of the ledger: book a batch of contribution schedules in one
transaction, idempotently (a replay books nothing twice)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import asyncpg

from schemas.events import ContributionSchedule

_STAGE_COLUMNS = (
    "contribution_id", "nik", "period", "programme", "opd_code", "category", "kecamatan",
    "funding_source", "due_date", "amount_idr", "jkk_idr", "jkm_idr", "schedule_id",
    "registration_event_id", "occurred_at",
)
_CANCEL_COLUMNS = ("contribution_id", "schedule_id", "registration_event_id")

_CREATE_STAGING = """
CREATE TEMP TABLE IF NOT EXISTS stage_contributions (
    contribution_id uuid, nik text, period text, programme text, opd_code text,
    category text, kecamatan text, funding_source text, due_date date, amount_idr bigint,
    jkk_idr bigint, jkm_idr bigint, schedule_id uuid, registration_event_id uuid,
    occurred_at timestamptz
) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS stage_cancellations (
    contribution_id uuid, schedule_id uuid, registration_event_id uuid
) ON COMMIT DELETE ROWS;
"""

# Book what is new; the unique (nik, period) and the primary key make a replay a no-op.
_BOOK = """
WITH inserted AS (
    INSERT INTO ledger.contributions (
        contribution_id, nik, period, programme, opd_code, category, kecamatan,
        funding_source, due_date, amount_idr, jkk_idr, jkm_idr, schedule_id,
        registration_event_id, occurred_at)
    SELECT DISTINCT ON (contribution_id) contribution_id, nik, period, programme, opd_code,
           category, kecamatan, funding_source, due_date, amount_idr, jkk_idr, jkm_idr,
           schedule_id, registration_event_id, occurred_at
      FROM stage_contributions
     ORDER BY contribution_id
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
)
SELECT programme, count(*) AS booked, sum(amount_idr)::bigint AS amount_idr,
       array_agg(extract(epoch FROM now() - occurred_at)::float8) FILTER
           (WHERE occurred_at IS NOT NULL) AS ages
  FROM inserted GROUP BY programme
"""

# Another payer already holds the worker's month: record the attempt, book nothing.
_DUPLICATES = """
INSERT INTO ledger.duplicate_attempts (contribution_id, nik, period, programme, opd_code,
    amount_idr, schedule_id, registration_event_id, held_by)
SELECT s.contribution_id, s.nik, s.period, s.programme, s.opd_code, s.amount_idr,
       s.schedule_id, s.registration_event_id, c.contribution_id
  FROM stage_contributions s
  JOIN ledger.contributions c ON c.nik = s.nik AND c.period = s.period
 WHERE c.contribution_id <> s.contribution_id
ON CONFLICT DO NOTHING
RETURNING programme
"""

# Cancel what is booked, not yet cancelled and not yet paid: a reversal transfer each.
_CANCEL = """
WITH eligible AS (
    SELECT DISTINCT ON (c.contribution_id) c.contribution_id, c.programme, c.amount_idr,
           s.schedule_id, s.registration_event_id
      FROM stage_cancellations s
      JOIN ledger.contributions c USING (contribution_id)
     WHERE NOT EXISTS (SELECT 1 FROM ledger.cancellations x
                        WHERE x.contribution_id = c.contribution_id)
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
    duplicates: Counter[str] = field(default_factory=Counter)
    reversed: Counter[str] = field(default_factory=Counter)
    event_ages: list[float] = field(default_factory=list)


def _due_rows(schedules: list[ContributionSchedule]) -> list[tuple[object, ...]]:
    rows = []
    for s in schedules:
        if s.kind != "due":
            continue
        for c in s.contributions:
            rows.append((
                c.contribution_id, s.nik, c.period, s.programme, s.opd_code, s.category.value,
                s.kecamatan, s.funding_source, c.due_date, c.amount_idr, c.components.jkk,
                c.components.jkm, s.schedule_id, s.registration_event_id, s.occurred_at,
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
    """Book due schedules and apply cancellations, in the order given, in one transaction."""
    result = BatchResult()
    due = _due_rows(schedules)
    cancels = _cancel_rows(schedules)
    async with connection.transaction():
        if due:
            await connection.copy_records_to_table(
                "stage_contributions", records=due, columns=_STAGE_COLUMNS
            )
            for row in await connection.fetch(_BOOK):
                result.booked[row["programme"]] += row["booked"]
                result.booked_idr[row["programme"]] += row["amount_idr"]
                result.event_ages.extend(row["ages"] or ())
            for row in await connection.fetch(_DUPLICATES):
                result.duplicates[row["programme"]] += 1
        if cancels:
            await connection.copy_records_to_table(
                "stage_cancellations", records=cancels, columns=_CANCEL_COLUMNS
            )
            for row in await connection.fetch(_CANCEL):
                result.reversed[row["programme"]] += row["reversed"]
    return result
