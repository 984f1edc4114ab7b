"""The Postgres adapter of the booking rules: load the facts a batch needs, let the model
(:mod:`services.ledger.model`) decide, write what it decided — all in one transaction.

The allocations a batch touches are row-locked first (in key order), so two ledger
processes decide one allocation's months one after the other: the ceiling holds exactly.
The one-payer rule is also the database's (a unique index and a statement check): a writer
that lost a race for a worker-month (another programme's ledger process booked it first)
gets a unique violation, and the batch is decided again on fresh facts.
"""

from __future__ import annotations

import logging
import operator
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from uuid import UUID

import asyncpg

from schemas.events import ContributionSchedule
from services.ledger import journal, model, outbox
from services.ledger.accounts import postings
from services.ledger.bills import BILL_LINES_SHARED
from services.ledger.model import (
    Allocation,
    Arrival,
    Booked,
    Facts,
    Held,
    HoldReason,
    Month,
    Rejection,
)
from services.ledger.sql import CONTRIBUTION_COLUMNS, contribution_columns

log = logging.getLogger(__name__)

RACE_RETRIES = 3  # a batch that lost a worker-month to another writer is decided again


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
    # Contributions the ledger cannot place, recorded in ledger.refused_contributions.
    unbookable: Counter[str] = field(default_factory=Counter)
    refused_reasons: Counter[str] = field(default_factory=Counter)


# The booking statements sort and hash a batch (24,000 rows and more): in memory, not in
# temporary files; and compiled by JIT they cost more than they run.
_SESSION = "SET work_mem = '64MB'; SET jit = off;"


async def prepare(connection: asyncpg.Connection) -> None:
    """Per-connection set-up (session settings)."""
    await connection.execute(_SESSION)


def arrivals(schedules: Iterable[ContributionSchedule]) -> list[Arrival]:
    """The months of the schedules, in order, as the model takes them."""
    found = []
    for s in schedules:
        kind, nik, programme, funding_source = s.kind, s.nik, s.programme, s.funding_source
        schedule_id, event_id, opd_code = s.schedule_id, s.registration_event_id, s.opd_code
        category, kecamatan, occurred_at = s.category.value, s.kecamatan, s.occurred_at
        for c in s.contributions:  # positional: the order of Month's fields
            found.append(Arrival(kind, Month(
                c.contribution_id, nik, c.period, c.generation, programme, funding_source,
                c.amount_idr, c.components.jkk, c.components.jkm, schedule_id, event_id,
                opd_code, category, kecamatan, c.due_date, occurred_at)))
    return found


async def book_schedules(
    connection: asyncpg.Connection, schedules: list[ContributionSchedule]
) -> BatchResult:
    """Book due schedules and apply cancellations in one transaction, in the order given."""
    batch = arrivals(schedules)
    if not batch:
        return BatchResult()
    decided, refused = await decide_and_write(connection, batch)
    return _result(decided, refused, schedules)


async def release(connection: asyncpg.Connection, allocation: Allocation) -> model.Plan:
    """Book the held months of one allocation that fit now, oldest first (after a budget
    raise), in the caller's transaction if there is one."""
    decided, _ = await decide_and_write(connection, [], release=[allocation])
    return decided


async def decide_and_write(
    connection: asyncpg.Connection, batch: Sequence[Arrival],
    release: Sequence[Allocation] = (),
) -> tuple[model.Plan, list[tuple[str, str]]]:
    """Decide a batch on the facts the ledger holds and write the plan, in one transaction;
    returns the plan and the (programme, reason) of each refusal recorded now."""
    for attempt in range(1, RACE_RETRIES + 1):
        try:
            async with connection.transaction():
                if any(a.kind == "cancelled" for a in batch):
                    # Bills being issued finish first; none is issued until we commit.
                    await connection.execute(BILL_LINES_SHARED)
                facts, stored = await _load(connection, batch, release)
                decided = model.plan(batch, facts, release)
                refused = await _write(connection, decided, stored)
            return decided, refused
        except (asyncpg.UniqueViolationError, asyncpg.ForeignKeyViolationError,
                asyncpg.DeadlockDetectedError):
            if attempt == RACE_RETRIES:
                raise
            log.warning("a worker-month of this batch was booked meanwhile; deciding again")
    raise AssertionError("unreachable")


# --- the facts ----------------------------------------------------------------------------

_ALLOCATIONS = """
SELECT programme, funding_source, allocated_idr - booked_idr AS room
  FROM ledger.budget_allocations
 WHERE (programme, funding_source) IN (SELECT * FROM unnest($1::text[], $2::text[]))
 ORDER BY programme, funding_source
   FOR UPDATE
"""

_PREMIUMS = """
SELECT programme, effective_from, monthly_idr, jkk_idr, jkm_idr
  FROM ledger.current_premium_rates WHERE programme = ANY($1::text[])
 ORDER BY programme, effective_from
"""

_COLUMNS = contribution_columns()
_H_COLUMNS = contribution_columns("h")

# Held months: those of the batch (whatever became of them) and every one still waiting in
# the allocations touched or for the batch's worker-months.
_HELD = f"""
SELECT {_H_COLUMNS}, h.reason, h.hold_seq,
       NOT EXISTS (SELECT 1 FROM ledger.held_resolutions r
                    WHERE r.contribution_id = h.contribution_id) AS waiting
  FROM ledger.held_contributions h WHERE h.contribution_id = ANY($1::uuid[])
UNION
SELECT {_H_COLUMNS}, h.reason, h.hold_seq, true
  FROM ledger.held_contributions h
 WHERE (h.programme, h.funding_source) IN (SELECT * FROM unnest($2::text[], $3::text[]))
   AND NOT EXISTS (SELECT 1 FROM ledger.held_resolutions r
                    WHERE r.contribution_id = h.contribution_id)
UNION
SELECT {_H_COLUMNS}, h.reason, h.hold_seq, true
  FROM ledger.held_contributions h
  JOIN unnest($4::text[], $5::text[]) AS m (nik, period) ON h.nik = m.nik AND h.period = m.period
 WHERE h.reason = 'awaiting_cancellation'
   AND NOT EXISTS (SELECT 1 FROM ledger.held_resolutions r
                    WHERE r.contribution_id = h.contribution_id)
"""

# Every booked row of the worker-months concerned, cancelled or not, billed or not.
BOOKED_FACTS = f"""
SELECT {contribution_columns("c")}, c.slot,
       EXISTS (SELECT 1 FROM ledger.cancellations x
                WHERE x.contribution_id = c.contribution_id) AS cancelled,
       (SELECT l.bill_id FROM ledger.bill_lines l
         WHERE l.contribution_id = c.contribution_id) AS bill_id
  FROM unnest($1::text[], $2::text[]) AS m (nik, period)
  JOIN ledger.contributions c ON c.nik = m.nik AND c.period = m.period
"""

_TOMBSTONES = f"""
SELECT {_COLUMNS} FROM ledger.early_cancellations WHERE contribution_id = ANY($1::uuid[])
"""

# The renewal rank of the workers concerned (model.Facts.ranks).
_RANKS = """
SELECT r.programme, r.nik, r.rank
  FROM unnest($1::text[], $2::text[]) AS w (programme, nik)
  JOIN ledger.renewal_ranks r ON r.programme = w.programme AND r.nik = w.nik
"""

# The workers' standing verdicts at BPJS that are rejections (model.Facts.rejections): the
# latest by verified_at, then by arrival, as finance.bpjs_members reads it.
_REJECTIONS = """
SELECT w.programme, w.nik, v.verification_id, v.verified_at, v.reason_code
  FROM unnest($1::text[], $2::text[]) AS w (programme, nik)
  CROSS JOIN LATERAL (
        SELECT b.status, b.verification_id, b.verified_at, b.reason_code
          FROM ledger.bpjs_verifications b
         WHERE b.programme = w.programme AND b.nik = w.nik
         ORDER BY b.verified_at DESC, b.seq DESC LIMIT 1) v
 WHERE v.status = 'rejected'
"""

_DECIDED = """
SELECT contribution_id FROM ledger.duplicate_attempts WHERE contribution_id = ANY($1::uuid[])
UNION ALL
SELECT contribution_id FROM ledger.cancelled_on_arrival WHERE contribution_id = ANY($1::uuid[])
"""


def _month(row: asyncpg.Record) -> Month:
    return Month(**{c: row[c] for c in CONTRIBUTION_COLUMNS})


@dataclass
class _Stored:
    """What the adapter needs beyond the model's facts: the bill of each billed month, the
    slot of each booked row and the next slot of each worker-month."""

    bills: dict[UUID, UUID] = field(default_factory=dict)
    slots: dict[UUID, int] = field(default_factory=dict)
    next_slot: dict[tuple[str, str], int] = field(default_factory=dict)


async def _load(
    connection: asyncpg.Connection, batch: Sequence[Arrival], release: Sequence[Allocation]
) -> tuple[Facts, _Stored]:
    """The facts of a batch, and what the database stores beyond them."""
    allocations = sorted({a.month.allocation for a in batch} | set(release))
    ids = list({a.month.contribution_id for a in batch})
    worker_months = {a.month.worker_month for a in batch}
    facts = Facts()
    rows = await connection.fetch(
        _ALLOCATIONS, [a[0] for a in allocations], [a[1] for a in allocations])
    facts.room = {(r["programme"], r["funding_source"]): r["room"] for r in rows}
    for r in await connection.fetch(_PREMIUMS, list({a[0] for a in allocations})):
        facts.premiums.setdefault(r["programme"], []).append(
            (r["effective_from"], (r["monthly_idr"], r["jkk_idr"], r["jkm_idr"])))
    held_rows = await connection.fetch(
        _HELD, ids, [a[0] for a in allocations], [a[1] for a in allocations],
        [w[0] for w in worker_months], [w[1] for w in worker_months])
    for r in held_rows:
        month = _month(r)
        facts.held[month.contribution_id] = Held(month, HoldReason(r["reason"]), r["hold_seq"],
                                                 r["waiting"])
        if r["waiting"]:
            worker_months.add(month.worker_month)
    facts.next_hold_seq = max((h.seq for h in facts.held.values()), default=0) + 1
    stored = _Stored()
    if worker_months:
        booked_rows = await connection.fetch(
            BOOKED_FACTS, [w[0] for w in worker_months], [w[1] for w in worker_months])
        for r in booked_rows:
            month = _month(r)
            facts.booked[month.contribution_id] = Booked(
                month, cancelled=r["cancelled"], billed=r["bill_id"] is not None)
            if r["bill_id"] is not None:
                stored.bills[month.contribution_id] = r["bill_id"]
            stored.slots[month.contribution_id] = r["slot"]
            stored.next_slot[month.worker_month] = max(
                stored.next_slot.get(month.worker_month, 0), r["slot"] + 1)
            if not r["cancelled"]:
                facts.active[month.worker_month] = month.contribution_id
    held_workers = {(h.month.programme, h.month.nik) for h in facts.held.values()}
    held_workers |= {(a.month.programme, a.month.nik) for a in batch}
    if held_workers:
        facts.ranks = {(r["programme"], r["nik"]): r["rank"] for r in await connection.fetch(
            _RANKS, [w[0] for w in held_workers], [w[1] for w in held_workers])}
        facts.rejections = {
            (r["programme"], r["nik"]): Rejection(r["verification_id"], r["verified_at"],
                                                  r["reason_code"])
            for r in await connection.fetch(_REJECTIONS, [w[0] for w in held_workers],
                                            [w[1] for w in held_workers])}
    if ids:
        for r in await connection.fetch(_TOMBSTONES, ids):
            facts.tombstones[r["contribution_id"]] = _month(r)
        facts.decided = {r["contribution_id"] for r in await connection.fetch(_DECIDED, ids)}
    return facts, stored


# --- writing the plan -----------------------------------------------------------------------

_row: Callable[[Month], tuple[object, ...]] = operator.attrgetter(*CONTRIBUTION_COLUMNS)


_REFUSE = """
INSERT INTO ledger.refused_contributions (contribution_id, nik, period, generation, programme,
    opd_code, funding_source, due_date, amount_idr, schedule_id, registration_event_id, reason)
SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::integer[], $5::text[],
                     $6::text[], $7::text[], $8::date[], $9::bigint[], $10::uuid[],
                     $11::uuid[], $12::text[])
ON CONFLICT DO NOTHING
RETURNING programme, reason
"""


# Months a standing BPJS rejection cancelled on arrival or in the held queue: the validator
# sees them stopped, so the OPD's resubmission enrols the worker anew (docs/bpjs.md).
_BPJS_CANCELLED = """
INSERT INTO ledger.bpjs_cancelled_months (contribution_id, verification_id, programme, nik,
                                          period)
SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[])
ON CONFLICT (contribution_id) DO NOTHING
"""


async def _write(
    connection: asyncpg.Connection, decided: model.Plan, stored: _Stored
) -> list[tuple[str, str]]:
    """Write a plan in an order the database's constraints accept at every statement: holds,
    the batch's postings, then each worker-month's bookings and cancellations wave by wave (a
    slot is cancelled before the next one is booked), the allocations' committed amounts,
    then what became of holds, duplicates, credits, tombstones, the months BPJS's rejections
    cancelled and refusals."""
    copy = connection.copy_records_to_table
    if decided.held:
        await copy("held_contributions", schema_name="ledger",
                   columns=(*CONTRIBUTION_COLUMNS, "reason"),
                   records=[(*_row(m), str(r)) for m, r in decided.held])
    journal_entries = postings(decided)
    await journal.post(connection, journal_entries.transfers)
    slots = dict(stored.slots)
    next_slot = dict(stored.next_slot)
    for books, cancels in _waves(decided.steps):
        # in key order: two writers of one worker-month wait for each other, never deadlock
        books.sort(key=lambda m: m.worker_month)
        cancels.sort(key=lambda b: b.month.worker_month)
        if books:
            rows = []
            for m in books:
                slot = slots[m.contribution_id] = next_slot.get(m.worker_month, 0)
                next_slot[m.worker_month] = slot + 1
                rows.append((*_row(m), slot, journal_entries.booking[m.contribution_id]))
            await copy("contributions", schema_name="ledger",
                       columns=(*CONTRIBUTION_COLUMNS, "slot", "posting_id"), records=rows)
        if cancels:
            await copy("cancellations", schema_name="ledger",
                       columns=("contribution_id", "schedule_id", "registration_event_id",
                                "nik", "period", "slot", "posting_id"),
                       records=[_cancellation(decided, b.month, slots,
                                              journal_entries.cancellation) for b in cancels])
    moved = sorted((key, used) for key, used in decided.room_used.items() if used)
    if moved:
        await connection.execute("SELECT ledger.commit_budget($1, $2, $3)",
                                 [k[0] for k, _ in moved], [k[1] for k, _ in moved],
                                 [used for _, used in moved])
    resolutions: list[tuple[UUID, str, UUID | None]] = [
        (m.contribution_id, "booked", None) for m in decided.released]
    resolutions += [(m.contribution_id, "cancelled", s) for m, s in decided.held_cancelled]
    resolutions += [(m.contribution_id, "duplicate", None) for m, _ in decided.held_duplicates]
    if resolutions:
        await copy("held_resolutions", schema_name="ledger",
                   columns=("contribution_id", "outcome", "schedule_id"), records=resolutions)
    duplicates = [*decided.duplicates, *decided.held_duplicates]
    if duplicates:
        await copy("duplicate_attempts", schema_name="ledger",
                   columns=("contribution_id", "nik", "period", "programme", "opd_code",
                            "amount_idr", "schedule_id", "registration_event_id", "occupied_by",
                            "generation"),
                   records=[(m.contribution_id, m.nik, m.period, m.programme, m.opd_code,
                             m.amount_idr, m.schedule_id, m.registration_event_id, payer,
                             m.generation) for m, payer in duplicates])
    if decided.credited:
        await copy("credits", schema_name="ledger",
                   columns=("contribution_id", "bill_id", "programme", "amount_idr"),
                   records=[(b.month.contribution_id, stored.bills[b.month.contribution_id],
                             b.month.programme, b.month.amount_idr) for b in decided.credited])
    if decided.tombstones:
        await copy("early_cancellations", schema_name="ledger", columns=CONTRIBUTION_COLUMNS,
                   records=[_row(m) for m in decided.tombstones])
    if decided.cancelled_early:
        await copy("cancelled_on_arrival", schema_name="ledger",
                   columns=("contribution_id", "schedule_id", "registration_event_id"),
                   records=[(m.contribution_id, m.schedule_id, m.registration_event_id)
                            for m in decided.cancelled_early])
    if decided.bpjs_rejected:
        await connection.execute(_BPJS_CANCELLED, *(list(column) for column in zip(*[
            (m.contribution_id, r.verification_id, m.programme, m.nik, m.period)
            for m, r in decided.bpjs_rejected], strict=True)))
    await outbox.record(connection, decided)
    if not decided.refused:
        return []
    inserted = await connection.fetch(_REFUSE, *(list(column) for column in zip(*[
        (m.contribution_id, m.nik, m.period, m.generation, m.programme, m.opd_code,
         m.funding_source, m.due_date, m.amount_idr, m.schedule_id, m.registration_event_id,
         str(r)) for m, r in decided.refused], strict=True)))
    return [(r["programme"], r["reason"]) for r in inserted]


def _cancellation(decided: model.Plan, month: Month, slots: dict[UUID, int],
                  posting: dict[UUID, UUID]) -> tuple[object, ...]:
    by = decided.cancelled_by[month.contribution_id]
    return (month.contribution_id, by.schedule_id, by.registration_event_id, month.nik,
            month.period, slots[month.contribution_id], posting[month.contribution_id])


def _waves(steps: list[tuple[str, object]]) -> list[tuple[list[Month], list[Booked]]]:
    """Bookings and cancellations grouped so that no worker-month is booked while another of
    its rows is active: wave n books each month's n-th booking of the batch, then cancels."""
    cancelled_before: Counter[tuple[str, str]] = Counter()
    wave_of: dict[UUID, int] = {}
    waves: list[tuple[list[Month], list[Booked]]] = []

    def wave(n: int) -> tuple[list[Month], list[Booked]]:
        while len(waves) <= n:
            waves.append(([], []))
        return waves[n]

    for kind, item in steps:
        if kind == "book":
            assert isinstance(item, Month)
            n = cancelled_before[item.worker_month]
            wave_of[item.contribution_id] = n
            wave(n)[0].append(item)
        elif kind == "cancel":
            assert isinstance(item, Booked)
            month = item.month
            n = wave_of.get(month.contribution_id, 0)
            cancelled_before[month.worker_month] = max(cancelled_before[month.worker_month], n + 1)
            wave(n)[1].append(item)
    return waves


def _result(decided: model.Plan, refused: list[tuple[str, str]],
            schedules: Sequence[ContributionSchedule]) -> BatchResult:
    result = BatchResult()
    for m in (*decided.booked, *decided.released):
        result.booked[m.programme] += 1
        result.booked_idr[m.programme] += m.amount_idr
    for m, _ in decided.held:
        result.held[m.programme] += 1
        result.held_idr[m.programme] += m.amount_idr
    for m, _ in (*decided.duplicates, *decided.held_duplicates):
        result.duplicates[m.programme] += 1
    for b in (*decided.reversed, *decided.credited):
        result.reversed[b.month.programme] += 1
    for b in decided.credited:
        result.credited[b.month.programme] += 1
    result.held_cancelled = len(decided.held_cancelled)
    for programme, reason in refused:
        result.unbookable[programme] += 1
        result.refused_reasons[reason] += 1
    booked_schedules = {m.schedule_id for m in decided.booked}
    now = datetime.now(UTC)
    result.event_ages = [(now - s.occurred_at).total_seconds() for s in schedules
                         if s.schedule_id in booked_schedules and s.occurred_at is not None]
    return result
