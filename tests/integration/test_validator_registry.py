"""The validator's registry in a real PostgreSQL: a batch decided in one transaction (state
and decision rows), and the state rebuilt from the ledger for workers booked before the
validator kept it there (a release whose state lived in a Faust table)."""

from __future__ import annotations

import json

import asyncpg

from schemas.events import TOPIC_REGISTRATIONS, ContributionSchedule
from services.domain import errors as E
from services.domain.enrolment import decide, empty_state
from services.domain.programme import Programme
from services.ledger import book
from services.ledger.budget import ensure_allocation
from services.ledger.testing import programme_copy
from services.validator.process import Incoming, Source, decide_message, read_message
from services.validator.registry import decide_batch, seed_from_ledger
from tests.support.workers import as_message, deregistration, registration, unique_nik

TODAY = registration().occurred_at.date()


async def funded(conn: asyncpg.Connection, malang: Programme) -> Programme:
    programme = programme_copy(malang, budget_idr=10**12)
    await ensure_allocation(conn, programme)
    return programme


def incoming(event: object, offset: int) -> Incoming:
    key, value = as_message(event)  # type: ignore[arg-type]
    return read_message(key, value, Source(TOPIC_REGISTRATIONS, 0, offset))


async def test_a_batch_writes_states_and_decisions_and_replays_identically(
    conn: asyncpg.Connection, malang: Programme
) -> None:
    programmes = {malang.id: malang}
    nik = unique_nik()
    events = [registration(nik=nik), registration(nik=nik, opd_code="DISHUB"),
              registration(nik=nik, coverage_start="2026-04")]
    batch = [incoming(e, i) for i, e in enumerate(events)]
    outcomes = await decide_batch(conn, batch, lambda i, s: decide_message(i, s, programmes))
    assert [bool(o.schedules) for o in outcomes] == [True, False, False]
    rows = {r["event_id"]: r for r in await conn.fetch(
        "SELECT * FROM registry.decisions WHERE nik = $1", nik)}
    assert [rows[e.event_id]["outcome"] for e in events] == ["accepted", "rejected", "rejected"]
    assert json.loads(rows[events[1].event_id]["errors"])[0]["code"] == E.DUPLICATE_ENROLLMENT
    assert rows[events[0].event_id]["schedule_ids"] == [outcomes[0].schedules[0].schedule_id]
    assert len(rows[events[0].event_id]["periods"]) == 12
    assert rows[events[1].event_id]["rejection_id"] == outcomes[1].rejected.rejection_id  # type: ignore[union-attr]
    state = await conn.fetchrow("SELECT version, state FROM registry.worker_state "
                                "WHERE nik = $1", nik)
    assert state["version"] == 2 and len(json.loads(state["state"])["events"]) == 3

    again = await decide_batch(conn, batch, lambda i, s: decide_message(i, s, programmes))
    assert [o.schedules for o in again] == [o.schedules for o in outcomes]
    assert [o.rejected.rejection_id if o.rejected else None for o in again] == [
        o.rejected.rejection_id if o.rejected else None for o in outcomes]
    assert await conn.fetchval("SELECT count(*) FROM registry.decisions WHERE nik = $1",
                               nik) == 3


async def test_workers_booked_without_a_state_get_it_rebuilt_from_the_ledger(
    conn: asyncpg.Connection, malang: Programme
) -> None:
    """As an older release left them: booked, deregistered and booked again, with the
    validator's memory gone with the broker."""
    programme = await funded(conn, malang)
    programmes = {programme.id: programme}
    nik = unique_nik()
    state = empty_state()
    schedules: list[ContributionSchedule] = []
    for event in [registration(nik=nik, programme=programme.id),
                  deregistration(nik, "2026-03", programme=programme.id),
                  registration(nik=nik, programme=programme.id, coverage_start="2026-06",
                               months=6)]:
        decision = decide(state, event, programmes, TODAY)
        state = decision.state or state
        schedules += decision.schedules
    await book.book_schedules(conn, schedules)
    assert await conn.fetchval("SELECT count(*) FROM registry.worker_state WHERE nik = $1",
                               nik) == 0

    assert await seed_from_ledger(conn) >= 1
    assert await seed_from_ledger(conn) == 0  # once
    row = await conn.fetchrow("SELECT version, state FROM registry.worker_state "
                              "WHERE nik = $1", nik)
    seeded = json.loads(row["state"])
    assert [len(e["periods"]) for e in seeded["enrollments"]] == [12, 6]
    assert [len(e["cancelled"]) for e in seeded["enrollments"]] == [9, 0]

    dishub = registration(nik=nik, opd_code="DISHUB", programme=programme.id,
                          coverage_start="2026-06", months=6)
    stop = deregistration(nik, "2026-08", programme=programme.id)
    outcomes = await decide_batch(conn, [incoming(dishub, 1), incoming(stop, 2)],
                                  lambda i, s: decide_message(i, s, programmes))
    assert outcomes[0].rejected is not None and outcomes[0].schedules == []
    assert [e.code for e in outcomes[0].rejected.errors] == [E.DUPLICATE_ENROLLMENT]
    (cancel,) = outcomes[1].schedules
    result = await book.book_schedules(conn, [cancel])
    assert result.reversed[programme.id] == 4  # 2026-08 .. 2026-11 of generation 1
    active = await conn.fetch(
        "SELECT period, generation FROM finance.contributions WHERE nik = $1 "
        "AND status = 'booked' ORDER BY period", nik)
    assert [(r["period"], r["generation"]) for r in active] == [
        ("2025-12", 0), ("2026-01", 0), ("2026-02", 0), ("2026-06", 1), ("2026-07", 1)]
