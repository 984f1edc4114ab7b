"""Registrations through the real broker and the service processes into real PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid
from datetime import date
from pathlib import Path

import asyncpg
import pytest

from schemas.events import (
    TOPIC_CONTRIBUTIONS,
    TOPIC_REGISTRATIONS,
    TOPIC_REJECTED,
    ContributionSchedule,
    RejectedEvent,
)
from services.domain.nik import encode_nik
from services.domain.schedule import contribution_id
from services.runtime.embedded import free_port
from services.runtime.settings import Settings
from services.runtime.stack import ServiceProcesses
from tests.support import faults
from tests.support.kafka import collect, publish, schedule_of
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
        schedule_of(*wanted), want=20)
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
    before = await db.fetchval("SELECT count(*) FROM finance.journal_lines "
                                "WHERE nik = ANY($1::text[])", niks)

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
    after = await db.fetchval("SELECT count(*) FROM finance.journal_lines "
                               "WHERE nik = ANY($1::text[])", niks)
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


async def test_a_schedule_the_ledger_cannot_read_is_rejected_as_malformed_schedule(
    stack: ServiceProcesses, settings: Settings, db: asyncpg.Pool
) -> None:
    """Something other than the validator wrote to the contributions topic: the ledger sends
    it to the rejected topic as ``malformed_schedule`` and books the schedules behind it."""
    marker = uuid.uuid4().hex
    good = registration()
    await publish(settings, TOPIC_CONTRIBUTIONS, [
        (good.worker.nik.encode(), json.dumps({"schedule_id": marker}).encode())])
    await publish(settings, TOPIC_REGISTRATIONS, [as_message(good)])
    records = await collect(settings, TOPIC_REJECTED, lambda r: marker.encode() in r.value,
                            want=1)
    assert len(records) == 1
    event = RejectedEvent.model_validate_json(records[0].value)
    assert event.source_topic == TOPIC_CONTRIBUTIONS
    assert [e.code for e in event.errors] == ["malformed_schedule"]
    assert len(await wait_booked(db, [good.worker.nik], 12)) == 12


def _programme_past_year_9999(folder: Path) -> Path:
    """The deployed programmes and one more whose last month is 9999-12: a registration for
    it passes every rule, yet its schedule runs past what a date can hold, so the validator
    fails on it (a configuration the domain cannot compute; no rule gives it a code)."""
    deployed = Settings().programmes_dir
    for source, target in ((deployed, folder), (deployed.parent / "calendar",
                                                folder.parent / "calendar")):
        target.mkdir()
        for path in source.glob("*.toml"):
            (target / path.name).write_text(path.read_text(encoding="utf-8"), encoding="utf-8")
    text = (deployed / "malang-2025.toml").read_text(encoding="utf-8")
    # billed monthly (a prepaid bill names a day of the fiscal year)
    text = re.sub(r"(?ms)^\[billing\]\n.*?(?=^\[|\Z)", "", text)
    for pattern, new in ((r'(?m)^id = .*$', 'id = "far-9999"'),
                         (r"(?m)^fiscal_year = .*$", "fiscal_year = 9999"),
                         (r'(?m)^first_period = .*$', 'first_period = "9999-12"'),
                         (r'(?m)^last_period = .*$', 'last_period = "9999-12"'),
                         (r'(?m)^headline_period = .*$', 'headline_period = "9999-12"'),
                         (r"(?m)^min_age = .*$", "min_age = 0"),
                         (r"(?m)^max_age = .*$", "max_age = 120")):
        text, count = re.subn(pattern, new, text, count=1)
        assert count == 1, pattern
    (folder / "far-9999.toml").write_text(text, encoding="utf-8")
    (folder.parent / "calendar" / "9999.toml").write_text(
        'year = 9999\nsource = "none: a test year"\nnational_holidays = []\n'
        "cuti_bersama = []\n", encoding="utf-8")
    return folder


async def test_an_event_the_validator_fails_on_is_rejected_as_internal_error(
    stack: ServiceProcesses, settings: Settings, db: asyncpg.Pool, tmp_path: Path
) -> None:
    """The validator's own failure on one event: it lands in the rejected topic as
    ``internal_error`` (counted, logged with its place), and the stream flows on."""
    programmes = _programme_past_year_9999(tmp_path / "programmes")
    ours = settings.model_copy(update={"programmes_dir": programmes,
                                       "validator_port": free_port()})
    validator = ServiceProcesses(ours, ["validator"], tmp_path / "logs")
    nik = encode_nik("35", "73", "01", date(1990, 1, 1), "M", 1 + uuid.uuid4().int % 9998)
    body = json.loads(registration().model_dump_json())
    body.update(programme="far-9999", coverage_start="9999-12",
                occurred_at="9999-06-01T09:00:00+07:00")
    body["worker"].update(nik=nik, birth_date="9990-01-01")
    good = registration()
    stack.stop("validator")  # this test's validator takes every partition
    try:
        validator.start()
        validator.wait_ready(timeout=120)
        await publish(settings, TOPIC_REGISTRATIONS, [(nik.encode(), json.dumps(body).encode()),
                                                      as_message(good)])
        records = await collect(settings, TOPIC_REJECTED,
                                lambda r: body["event_id"].encode() in r.value, want=1)
        assert len(await wait_booked(db, [good.worker.nik], 12)) == 12
        metrics = faults.metrics_text(ours, "validator")
    finally:
        validator.stop()
        stack.start("validator")
        stack.wait_ready(timeout=120)
    assert len(records) == 1
    event = RejectedEvent.model_validate_json(records[0].value)
    assert [e.code for e in event.errors] == ["internal_error"]
    assert event.original == json.dumps(body)
    assert faults.metric_value(
        metrics, 'iuran_registrations_rejected_total{code="internal_error"}') == 1
    log = (tmp_path / "logs" / "validator.log").read_text(encoding="utf-8")
    assert "validator failed on an event" in log and nik not in log
