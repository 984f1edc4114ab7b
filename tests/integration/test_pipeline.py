"""Registrations through the real broker and the service processes into real PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import time
import uuid

import asyncpg
import pytest

from schemas.events import (
    TOPIC_CONTRIBUTIONS,
    TOPIC_REGISTRATIONS,
    TOPIC_REJECTED,
    ContributionSchedule,
    RejectedEvent,
)
from services.domain.schedule import contribution_id
from services.runtime.settings import Settings
from services.runtime.stack import ServiceProcesses
from tests.support.kafka import collect, publish
from tests.support.settle import handled
from tests.support.workers import as_message, registration

pytestmark = pytest.mark.integration


async def booked_for(db: asyncpg.Pool, niks: list[str]) -> list[asyncpg.Record]:
    return await db.fetch(
        "SELECT nik, period, amount_idr, jkk_idr, jkm_idr, contribution_id "
        "FROM ledger.contributions WHERE nik = ANY($1::text[]) ORDER BY nik, period", niks)


async def wait_booked(db: asyncpg.Pool, niks: list[str], want: int,
                      timeout: float = 90.0) -> list[asyncpg.Record]:
    deadline = time.monotonic() + timeout
    rows: list[asyncpg.Record] = []
    while time.monotonic() < deadline:
        rows = await booked_for(db, niks)
        if len(rows) >= want:
            return rows
        await asyncio.sleep(0.3)
    return rows


async def test_registrations_become_schedules_and_ledger_rows(
    stack: ServiceProcesses, settings: Settings, db: asyncpg.Pool
) -> None:
    events = [registration() for _ in range(20)]
    niks = [e.worker.nik for e in events]
    await publish(settings, TOPIC_REGISTRATIONS, [as_message(e) for e in events])

    rows = await wait_booked(db, niks, 20 * 12)
    assert len(rows) == 240
    assert {r["amount_idr"] for r in rows} == {16_800}
    assert {(r["jkk_idr"], r["jkm_idr"]) for r in rows} == {(10_000, 6_800)}
    first = events[0].worker.nik
    assert [r["period"] for r in rows if r["nik"] == first] == [
        "2025-12", "2026-01", "2026-02", "2026-03", "2026-04", "2026-05",
        "2026-06", "2026-07", "2026-08", "2026-09", "2026-10", "2026-11",
    ]
    assert {r["contribution_id"] for r in rows if r["nik"] == first} == {
        contribution_id("malang-2025", first, r["period"]) for r in rows if r["nik"] == first
    }

    wanted = {e.event_id for e in events}
    records = await collect(
        settings, TOPIC_CONTRIBUTIONS,
        lambda r: ContributionSchedule.model_validate_json(r.value).registration_event_id
        in wanted, want=20)
    schedules = [ContributionSchedule.model_validate_json(r.value) for r in records]
    assert len(schedules) == 20
    assert all(s.kind == "due" and len(s.contributions) == 12 for s in schedules)
    assert all(r.key == s.nik.encode() for r, s in zip(records, schedules, strict=True))


async def test_replaying_the_same_events_books_nothing_twice(
    stack: ServiceProcesses, settings: Settings, db: asyncpg.Pool
) -> None:
    events = [registration() for _ in range(10)]
    niks = [e.worker.nik for e in events]
    messages = [as_message(e) for e in events]
    await publish(settings, TOPIC_REGISTRATIONS, messages)
    assert len(await wait_booked(db, niks, 120)) == 120
    before = await db.fetchval("SELECT count(*) FROM ledger.transfers t JOIN "
                               "ledger.contributions c USING (contribution_id) "
                               "WHERE c.nik = ANY($1::text[])", niks)

    # the same events again, and the same people registered again under new event ids
    await publish(settings, TOPIC_REGISTRATIONS, messages * 2)
    again = [registration(nik=n, event_id=uuid.uuid4()) for n in niks]
    await publish(settings, TOPIC_REGISTRATIONS, [as_message(e) for e in again])
    rejected = await collect(
        settings, TOPIC_REJECTED,
        lambda r: RejectedEvent.model_validate_json(r.value).event_id
        in {str(e.event_id) for e in again}, want=10)
    assert {e.code for r in rejected for e in RejectedEvent.model_validate_json(r.value).errors} \
        == {"duplicate_enrollment"}

    await handled(settings)  # the replays have passed through every service
    assert len(await booked_for(db, niks)) == 120
    after = await db.fetchval("SELECT count(*) FROM ledger.transfers t JOIN "
                              "ledger.contributions c USING (contribution_id) "
                              "WHERE c.nik = ANY($1::text[])", niks)
    assert after == before == 120


async def test_malformed_json_lands_in_the_rejected_topic(
    stack: ServiceProcesses, settings: Settings, db: asyncpg.Pool
) -> None:
    marker = uuid.uuid4().hex
    bad = [
        (b"3573010101900001", f'{{"not json {marker}'.encode()),
        (b"3573010101900002", json.dumps({"event_id": marker}).encode()),
    ]
    good = registration()
    await publish(settings, TOPIC_REGISTRATIONS, [*bad, as_message(good)])
    records = await collect(settings, TOPIC_REJECTED, lambda r: marker.encode() in r.value,
                            want=2)
    rejected = {r.key: RejectedEvent.model_validate_json(r.value) for r in records}
    assert len(rejected) == 2
    not_json = rejected[b"3573010101900001"]
    assert [e.code for e in not_json.errors] == ["malformed_json"]
    assert not_json.source_topic == TOPIC_REGISTRATIONS
    assert not_json.original == bad[0][1].decode()
    assert "missing_field" in {e.code for e in rejected[b"3573010101900002"].errors}
    # the stream keeps flowing: the good event behind them is booked
    assert len(await wait_booked(db, [good.worker.nik], 12)) == 12
