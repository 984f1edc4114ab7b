"""Fold a batch of iuran.ledger.v1 events into the coverage tables (coverage.*), in one
transaction: the events whose outbox_id was applied before are skipped (coverage.applied),
the others' changes (services.domain.coverage_fold) are added to the running totals.

Rows are upserted in key order, so two projector processes (a moment of overlap in a
rebalance) take the row locks in the same order; an event both try to apply is applied by
the first, and skipped by the second once the first commits.
"""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from schemas.events import LedgerEvent
from services.domain.coverage_fold import deltas, group_deltas
from services.runtime.deadletter import DeadLetter, record_dead_letters

_CLAIM = """
INSERT INTO coverage.applied (outbox_id) SELECT unnest($1::bigint[])
ON CONFLICT DO NOTHING
RETURNING outbox_id
"""

_MONTHS = """
INSERT INTO coverage.months AS m (programme, period, opd_code, category, kecamatan,
                                  booked_months, booked_idr, held_months, held_idr, changes)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[],
                     $6::bigint[], $7::bigint[], $8::bigint[], $9::bigint[], $10::bigint[])
ON CONFLICT (programme, period, opd_code, category, kecamatan) DO UPDATE
   SET booked_months = m.booked_months + EXCLUDED.booked_months,
       booked_idr = m.booked_idr + EXCLUDED.booked_idr,
       held_months = m.held_months + EXCLUDED.held_months,
       held_idr = m.held_idr + EXCLUDED.held_idr,
       changes = m.changes + EXCLUDED.changes
"""

_WORKERS = """
INSERT INTO coverage.workers AS w (programme, dimension, key, nik, booked_months, held_months)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::bigint[],
                     $6::bigint[])
ON CONFLICT (programme, dimension, key, nik) DO UPDATE
   SET booked_months = w.booked_months + EXCLUDED.booked_months,
       held_months = w.held_months + EXCLUDED.held_months
RETURNING programme, dimension, key, nik, booked_months, held_months
"""

_GROUPS = """
INSERT INTO coverage.groups AS t (programme, dimension, key, active_workers,
                                  contributions_booked, booked_idr, awaiting_budget_workers,
                                  awaiting_budget_contributions, awaiting_budget_idr)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::bigint[],
                     $6::bigint[], $7::bigint[], $8::bigint[], $9::bigint[])
ON CONFLICT (programme, dimension, key) DO UPDATE
   SET active_workers = t.active_workers + EXCLUDED.active_workers,
       contributions_booked = t.contributions_booked + EXCLUDED.contributions_booked,
       booked_idr = t.booked_idr + EXCLUDED.booked_idr,
       awaiting_budget_workers = t.awaiting_budget_workers + EXCLUDED.awaiting_budget_workers,
       awaiting_budget_contributions = t.awaiting_budget_contributions
                                       + EXCLUDED.awaiting_budget_contributions,
       awaiting_budget_idr = t.awaiting_budget_idr + EXCLUDED.awaiting_budget_idr
"""

_PAID = """
INSERT INTO coverage.paid AS p (programme, paid_idr, settled_bills)
SELECT * FROM unnest($1::text[], $2::bigint[], $3::bigint[])
ON CONFLICT (programme) DO UPDATE
   SET paid_idr = p.paid_idr + EXCLUDED.paid_idr,
       settled_bills = p.settled_bills + EXCLUDED.settled_bills
"""


def _columns(rows: Sequence[tuple[object, ...]]) -> list[list[object]]:
    return [list(column) for column in zip(*rows, strict=True)]


async def apply(connection: asyncpg.Connection,
                events: Sequence[LedgerEvent]) -> list[LedgerEvent]:
    """Apply the events not applied before, in one transaction; returns those applied now."""
    first: dict[int, LedgerEvent] = {}
    for event in events:
        first.setdefault(event.outbox_id, event)
    unique = list(first.values())
    if not unique:
        return []
    async with connection.transaction():
        claimed = {r["outbox_id"] for r in await connection.fetch(
            _CLAIM, sorted(e.outbox_id for e in unique))}
        fresh = [e for e in unique if e.outbox_id in claimed]
        change = deltas(fresh)
        if change.months:
            await connection.execute(_MONTHS, *_columns(
                [(*k, *v) for k, v in sorted(change.months.items())]))
        if change.workers:
            rows = await connection.fetch(_WORKERS, *_columns(
                [(*k, v[0], v[2]) for k, v in sorted(change.workers.items())]))
            now = {(r["programme"], r["dimension"], r["key"], r["nik"]):
                   (r["booked_months"], r["held_months"]) for r in rows}
            groups = group_deltas(change.workers, now)
            await connection.execute(_GROUPS, *_columns(
                [(*k, *v) for k, v in sorted(groups.items())]))
        if change.paid:
            await connection.execute(_PAID, *_columns(
                [(k, *v) for k, v in sorted(change.paid.items())]))
    return fresh


async def set_aside(connection: asyncpg.Connection, outbox_id: int,
                    letter: DeadLetter) -> None:
    """An event that cannot be applied (its sums break the totals' range): kept as a dead
    letter and counted as handled, in one transaction, so it never stops the projector."""
    async with connection.transaction():
        await record_dead_letters(connection, [letter])
        await connection.execute("INSERT INTO coverage.applied (outbox_id) VALUES ($1)"
                                 " ON CONFLICT DO NOTHING", outbox_id)


# The outbox rows written more than $2 seconds ago, after $1, that no delivery applied.
_STRAGGLERS = """
SELECT o.outbox_id, o.programme, o.event
  FROM ledger.outbox o
 WHERE o.outbox_id > $1 AND o.recorded_at < now() - make_interval(secs => $2)
   AND NOT EXISTS (SELECT 1 FROM coverage.applied a WHERE a.outbox_id = o.outbox_id)
 ORDER BY o.outbox_id
"""
_SWEPT = """
SELECT coalesce(max(outbox_id), $1) FROM ledger.outbox
 WHERE outbox_id > $1 AND recorded_at < now() - make_interval(secs => $2)
"""


async def stragglers(connection: asyncpg.Connection, after: int,
                     grace: float) -> tuple[int, list[asyncpg.Record]]:
    """The outbox rows after ``after`` written more than ``grace`` seconds ago that no
    delivery of iuran.ledger.v1 applied (a broker that lost them, a relay that cannot reach
    the broker), and the id up to which every such row is applied once they are (the
    ``after`` of the next call)."""
    swept = int(await connection.fetchval(_SWEPT, after, grace))
    rows = await connection.fetch(_STRAGGLERS, after, grace)
    return swept, [r for r in rows if r["outbox_id"] <= swept]
