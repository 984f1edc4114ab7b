"""The ledger's outbox: what a transaction committed, written in that transaction as
iuran.ledger.v1 events (``ledger.outbox``), relayed to Kafka afterwards
(:mod:`services.ledger.relay`).

A booking writes one row per programme it touched: per worker (and OPD, category, kecamatan
and monthly amount) the periods booked, cancelled, credited, held, released, cancelled while
held and found duplicate while held. A settlement of bills writes one row per programme with
the bills settled. A batch of BPJS verdicts writes one row per programme with the workers
whose standing verdict it recorded. A very large batch (a budget raise that releases
thousands of held workers) is cut into parts of at most :data:`MAX_EVENT_BYTES`, under the
broker's message size. The row's id is the event's ``outbox_id``: taken from the sequence
before the row is written, so the row holds the event exactly as it is sent (fields at their
default, such as empty lists, left out).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Literal
from uuid import UUID

import asyncpg

from schemas.events import (
    INT64_MAX,
    LedgerBillSettled,
    LedgerBpjsVerdict,
    LedgerEvent,
    LedgerWorkerMonths,
)
from services.ledger.model import Month, Plan

# An event's JSON stays under this size (the broker's default limit is 1 MiB).
MAX_EVENT_BYTES = 512 * 1024

# The kinds of change of a month, as LedgerWorkerMonths names them.
KINDS = ("booked", "cancelled", "credited", "held", "released", "held_cancelled",
         "held_duplicate")
# (programme, NIK, status, verified_at) of standing BPJS verdicts
Verdict = tuple[str, str, Literal["verified", "rejected"], datetime]
_Group = tuple[str, str, str, str, str, int]  # programme, nik, opd, category, kecamatan, amount


def _changes(plan: Plan) -> Iterable[tuple[str, Month]]:
    """(kind, month) of every month the plan changes, in the order of the kinds."""
    for month in (*plan.booked, *plan.released):
        yield "booked", month
    for booked in plan.reversed:
        yield "cancelled", booked.month
    for booked in plan.credited:
        yield "credited", booked.month
    for month, _ in plan.held:
        yield "held", month
    for month in plan.released:
        yield "released", month
    for month, _ in plan.held_cancelled:
        yield "held_cancelled", month
    for month, _ in plan.held_duplicates:
        yield "held_duplicate", month


def events_of(plan: Plan, *, recorded_at: datetime | None = None) -> list[LedgerEvent]:
    """The events of a plan: one per programme (more when one would be too large), numbered
    1, 2, ... until :func:`record` gives them their outbox ids."""
    groups: dict[_Group, dict[str, list[str]]] = {}
    for kind, m in _changes(plan):
        key = (m.programme, m.nik, m.opd_code, m.category, m.kecamatan, m.amount_idr)
        groups.setdefault(key, {}).setdefault(kind, []).append(m.period)
    by_programme: dict[str, list[LedgerWorkerMonths]] = {}
    for (programme, nik, opd, category, kecamatan, amount), kinds in groups.items():
        by_programme.setdefault(programme, []).append(LedgerWorkerMonths(
            nik=nik, opd_code=opd, category=category, kecamatan=kecamatan, amount_idr=amount,
            **{kind: sorted(periods) for kind, periods in kinds.items()}))
    for programme, workers in by_programme.items():
        _summable(programme, workers)
    at = recorded_at or datetime.now(UTC)
    events = [e for programme, workers in sorted(by_programme.items())
              for e in _fit(programme, workers, at)]
    return [e.model_copy(update={"outbox_id": n}) for n, e in enumerate(events, 1)]


def settled_events(bills: Iterable[tuple[str, UUID, str, int]], *,
                   recorded_at: datetime | None = None) -> list[LedgerEvent]:
    """One event per programme for bills settled, (programme, bill id, period, amount) each;
    numbered 1, 2, ... until :func:`record_settlements` gives them their outbox ids."""
    by_programme: dict[str, list[LedgerBillSettled]] = {}
    for programme, bill_id, period, amount in bills:
        by_programme.setdefault(programme, []).append(
            LedgerBillSettled(bill_id=bill_id, period=period, amount_idr=amount))
    at = recorded_at or datetime.now(UTC)
    return [LedgerEvent(outbox_id=n, programme=programme, recorded_at=at, bills_settled=b)
            for n, (programme, b) in enumerate(sorted(by_programme.items()), 1)]


# Standing verdicts per event: a verdict is about 100 bytes of JSON, far under the limit.
VERDICTS_PER_EVENT = 2_000


def verdict_events(verdicts: Iterable[Verdict], *,
                   recorded_at: datetime | None = None) -> list[LedgerEvent]:
    """The events of standing verdicts recorded now, (programme, NIK, status, verified_at)
    each: one per programme (and per VERDICTS_PER_EVENT), numbered 1, 2, ... until
    :func:`record_verdicts` gives them their outbox ids."""
    by_programme: dict[str, list[LedgerBpjsVerdict]] = {}
    for programme, nik, status, verified_at in verdicts:
        by_programme.setdefault(programme, []).append(
            LedgerBpjsVerdict(nik=nik, status=status, verified_at=verified_at))
    at = recorded_at or datetime.now(UTC)
    return [LedgerEvent(outbox_id=1, programme=programme, recorded_at=at,
                        bpjs_verdicts=found[start:start + VERDICTS_PER_EVENT])
            for programme, found in sorted(by_programme.items())
            for start in range(0, len(found), VERDICTS_PER_EVENT)]


def _summable(programme: str, workers: list[LedgerWorkerMonths]) -> None:
    """Consumers sum an event's rupiah in BIGINT: a batch whose months of one programme add
    up to more cannot be described, and is refused as out of range."""
    total = sum(w.amount_idr * len(getattr(w, kind)) for w in workers for kind in KINDS)
    if total > INT64_MAX:
        raise OverflowError(f"the months of {programme} in one batch add up to more than "
                            "BIGINT rupiah")


def _fit(programme: str, workers: list[LedgerWorkerMonths],
         at: datetime) -> list[LedgerEvent]:
    """One event of the workers, or halves of them until each event fits."""
    event = LedgerEvent(outbox_id=1, programme=programme, recorded_at=at, workers=workers)
    if len(workers) < 2 or len(event.model_dump_json(exclude_defaults=True)) <= MAX_EVENT_BYTES:
        return [event]
    middle = len(workers) // 2
    return _fit(programme, workers[:middle], at) + _fit(programme, workers[middle:], at)


_NEXT_IDS = "SELECT nextval('ledger.outbox_ids') FROM generate_series(1, $1)"
_INSERT = """
INSERT INTO ledger.outbox (outbox_id, programme, event, recorded_at)
SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::timestamptz[])
"""


async def record(connection: asyncpg.Connection, plan: Plan) -> list[LedgerEvent]:
    """Write the outbox rows of a plan in the caller's transaction (none when the plan
    changes no month); returns the events as written."""
    return await _write(connection, events_of(plan))


async def record_settlements(connection: asyncpg.Connection,
                             bill_ids: Sequence[UUID]) -> list[LedgerEvent]:
    """Write the outbox rows of bills settled now, in the caller's transaction."""
    rows = await connection.fetch(
        "SELECT programme, bill_id, period, amount_idr FROM ledger.bills"
        " WHERE bill_id = ANY($1::uuid[]) ORDER BY programme, period, bill_id", list(bill_ids))
    return await _write(connection, settled_events(
        (r["programme"], r["bill_id"], r["period"], r["amount_idr"]) for r in rows))


async def record_verdicts(connection: asyncpg.Connection,
                          verdicts: Iterable[Verdict]
                          ) -> list[LedgerEvent]:
    """Write the outbox rows of standing verdicts recorded now, in the caller's
    transaction."""
    return await _write(connection, verdict_events(verdicts))


async def _write(connection: asyncpg.Connection,
                 events: list[LedgerEvent]) -> list[LedgerEvent]:
    """Insert the events, each under an id of the outbox's sequence."""
    if not events:
        return []
    ids = [r[0] for r in await connection.fetch(_NEXT_IDS, len(events))]
    events = [e.model_copy(update={"outbox_id": i}) for e, i in zip(events, ids, strict=True)]
    await connection.execute(
        _INSERT, ids, [e.programme for e in events],
        [e.model_dump_json(exclude_defaults=True) for e in events],
        [e.recorded_at for e in events])
    return events
