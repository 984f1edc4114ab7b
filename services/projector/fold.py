"""Fold a batch of iuran.ledger.v1 events into the coverage tables (coverage.*), in one
transaction: the events whose outbox_id was applied before are skipped (coverage.applied),
the others' changes (services.domain.coverage_fold) are added to the running totals.

Rows are upserted in key order, so two projector processes (a moment of overlap in a
rebalance) take the row locks in the same order; an event both try to apply is applied by
the first, and skipped by the second once the first commits. A batch first takes a lock per
programme it touches (before claiming), so the workers' months and verdicts of a programme
are folded one batch after the other: the verified and awaiting BPJS counts read both.
"""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from schemas.events import LedgerEvent
from services.domain.coverage_fold import bpjs_group_deltas, deltas, group_deltas
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
                                  awaiting_budget_contributions, awaiting_budget_idr,
                                  verified_workers, awaiting_bpjs_workers)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::bigint[],
                     $6::bigint[], $7::bigint[], $8::bigint[], $9::bigint[], $10::bigint[],
                     $11::bigint[])
ON CONFLICT (programme, dimension, key) DO UPDATE
   SET active_workers = t.active_workers + EXCLUDED.active_workers,
       contributions_booked = t.contributions_booked + EXCLUDED.contributions_booked,
       booked_idr = t.booked_idr + EXCLUDED.booked_idr,
       awaiting_budget_workers = t.awaiting_budget_workers + EXCLUDED.awaiting_budget_workers,
       awaiting_budget_contributions = t.awaiting_budget_contributions
                                       + EXCLUDED.awaiting_budget_contributions,
       awaiting_budget_idr = t.awaiting_budget_idr + EXCLUDED.awaiting_budget_idr,
       verified_workers = t.verified_workers + EXCLUDED.verified_workers,
       awaiting_bpjs_workers = t.awaiting_bpjs_workers + EXCLUDED.awaiting_bpjs_workers
"""

_LOCK = """
SELECT pg_advisory_xact_lock(hashtextextended('coverage:' || p, 0)) FROM unnest($1::text[]) p
"""

_VERDICTS_BEFORE = """
SELECT v.programme, v.nik, v.status
  FROM coverage.verdicts v
  JOIN unnest($1::text[], $2::bigint[]) AS w (programme, nik)
    ON v.programme = w.programme AND v.nik = w.nik
"""

# A verdict replaces the worker's only when it is later (verified_at, then outbox id).
_VERDICTS = """
INSERT INTO coverage.verdicts AS v (programme, nik, verified_at, outbox_id, status)
SELECT * FROM unnest($1::text[], $2::bigint[], $3::timestamptz[], $4::bigint[], $5::text[])
ON CONFLICT (programme, nik) DO UPDATE
   SET status = EXCLUDED.status, verified_at = EXCLUDED.verified_at,
       outbox_id = EXCLUDED.outbox_id
 WHERE (EXCLUDED.verified_at, EXCLUDED.outbox_id) > (v.verified_at, v.outbox_id)
RETURNING programme, nik, status
"""

_VERDICT_CHANGES = """
INSERT INTO coverage.verdict_changes AS c (programme, changes)
SELECT * FROM unnest($1::text[], $2::bigint[])
ON CONFLICT (programme) DO UPDATE SET changes = c.changes + EXCLUDED.changes
"""

# The groups where these workers have booked months.
_ACTIVE_IN = """
SELECT w.programme, w.dimension, w.key, w.nik, w.booked_months
  FROM coverage.workers w
  JOIN unnest($1::text[], $2::bigint[]) AS c (programme, nik)
    ON w.programme = c.programme AND w.nik = c.nik
 WHERE w.booked_months > 0
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
        await connection.execute(_LOCK, sorted({e.programme for e in unique}))
        claimed = {r["outbox_id"] for r in await connection.fetch(
            _CLAIM, sorted(e.outbox_id for e in unique))}
        fresh = [e for e in unique if e.outbox_id in claimed]
        change = deltas(fresh)
        if change.months:
            await connection.execute(_MONTHS, *_columns(
                [(*k, *v) for k, v in sorted(change.months.items())]))
        touched = sorted({(k[0], k[3]) for k in change.workers} | set(change.verdicts))
        before = {(r["programme"], r["nik"]): r["status"] for r in await connection.fetch(
            _VERDICTS_BEFORE, *_columns(touched))} if touched else {}
        after = {}
        if change.verdicts:
            after = {(r["programme"], r["nik"]): r["status"] for r in await connection.fetch(
                _VERDICTS, *_columns([(*k, *v) for k, v in sorted(change.verdicts.items())]))}
            changed = {k[0]: 0 for k in after}
            for k in after:
                changed[k[0]] += 1
            if changed:
                await connection.execute(_VERDICT_CHANGES, *_columns(sorted(changed.items())))
        groups: dict[tuple[str, str, str], list[int]] = {}
        months: dict[tuple[str, str, str, int], tuple[int, int]] = {}
        if change.workers:
            rows = await connection.fetch(_WORKERS, *_columns(
                [(*k, v[0], v[2]) for k, v in sorted(change.workers.items())]))
            now = {(r["programme"], r["dimension"], r["key"], r["nik"]):
                   (r["booked_months"], r["held_months"]) for r in rows}
            groups = {k: [*v, 0, 0] for k, v in group_deltas(change.workers, now).items()}
            months = {k: (now[k][0] - d[0], now[k][0]) for k, d in change.workers.items()}
        moved = sorted(k for k, status in after.items() if before.get(k) != status)
        if moved:
            for r in await connection.fetch(_ACTIVE_IN, *_columns(moved)):
                key = (r["programme"], r["dimension"], r["key"], r["nik"])
                months.setdefault(key, (r["booked_months"], r["booked_months"]))
        for group, (verified, awaiting) in bpjs_group_deltas(months, before, after).items():
            g = groups.setdefault(group, [0] * 8)
            g[6] += verified
            g[7] += awaiting
        if groups:
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
