"""The programme's registration rules through the running validator, ledger and broker: a
September cohort, an unknown kecamatan code, a birth-date warning, and a deregistration by
an OPD that may not stop the enrolment."""

from __future__ import annotations

import asyncio
import time
from datetime import date, datetime

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
from services.domain.periods import period_range
from services.runtime.settings import Settings
from services.runtime.stack import ServiceProcesses
from tests.support.kafka import collect, publish, schedule_of
from tests.support.workers import WIB, as_message, deregistration, registration, unique_nik

pytestmark = pytest.mark.integration


async def booked_periods(db: asyncpg.Pool, nik: str) -> list[str]:
    rows = await db.fetch(
        "SELECT period FROM finance.contributions WHERE nik = $1 "
        "AND status IN ('booked', 'billed', 'paid') ORDER BY period", nik)
    return [r["period"] for r in rows]


async def wait_for(check, timeout: float = 90.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while True:
        result = await check()
        if result or time.monotonic() > deadline:
            return result
        await asyncio.sleep(0.3)


async def rejection_of(settings: Settings, event_id: str) -> RejectedEvent:
    (record,) = await collect(
        settings, TOPIC_REJECTED,
        lambda r: RejectedEvent.model_validate_json(r.value).event_id == event_id, want=1)
    return RejectedEvent.model_validate_json(record.value)


async def test_a_september_cohort_is_booked_for_its_own_twelve_months(
    stack: ServiceProcesses, db: asyncpg.Pool, settings: Settings
) -> None:
    event = registration(coverage_start="2025-09").model_copy(
        update={"occurred_at": datetime(2025, 9, 1, 9, 0, tzinfo=WIB)})
    nik = event.worker.nik
    await publish(settings, TOPIC_REGISTRATIONS, [as_message(event)])

    async def twelve() -> list[str]:
        periods = await booked_periods(db, nik)
        return periods if len(periods) >= 12 else []

    assert await wait_for(twelve) == list(period_range("2025-09", 12))  # 2025-09 to 2026-08
    first_due = await db.fetchval(
        "SELECT due_date FROM finance.contributions WHERE nik = $1 AND period = '2025-09'", nik)
    assert first_due == date(2025, 9, 15)


async def test_an_unknown_kecamatan_code_is_refused_with_its_code(
    stack: ServiceProcesses, settings: Settings
) -> None:
    # Kota Malang has kecamatan 35.73.01 to 35.73.05: 06 is in no edition of the list.
    valid = registration(born=date(1988, 4, 2))
    nik = encode_nik("35", "73", "06", date(1988, 4, 2), "M", int(valid.worker.nik[12:]))
    event = valid.model_copy(update={"worker": valid.worker.model_copy(update={"nik": nik})})
    await publish(settings, TOPIC_REGISTRATIONS, [as_message(event)])
    rejected = await rejection_of(settings, str(event.event_id))
    assert [(e.field, e.code) for e in rejected.errors] == [
        ("worker.nik", "unknown_kecamatan_code")]
    assert nik not in rejected.errors[0].message


async def test_a_birth_date_that_differs_from_the_nik_is_accepted_with_a_warning(
    stack: ServiceProcesses, db: asyncpg.Pool, settings: Settings
) -> None:
    event = registration(born=date(1984, 3, 9))
    corrected = event.worker.model_copy(update={"birth_date": date(1984, 3, 19)})
    event = event.model_copy(update={"worker": corrected})
    await publish(settings, TOPIC_REGISTRATIONS, [as_message(event)])
    (record,) = await collect(
        settings, TOPIC_CONTRIBUTIONS,
        schedule_of(event.event_id), want=1)
    schedule = ContributionSchedule.model_validate_json(record.value)
    assert schedule.kind == "due" and len(schedule.contributions) == 12
    assert [(w.field, w.code) for w in schedule.warnings] == [
        ("worker.birth_date", "nik_birth_date_mismatch")]

    async def booked() -> int:
        return len(await booked_periods(db, event.worker.nik)) >= 12

    assert await wait_for(booked)


async def test_a_deregistration_by_another_opd_is_refused_and_stops_nothing(
    stack: ServiceProcesses, db: asyncpg.Pool, settings: Settings
) -> None:
    nik = unique_nik()
    await publish(settings, TOPIC_REGISTRATIONS,
                  [as_message(registration(nik=nik, opd_code="DISKOPINDAG"))])

    async def twelve() -> int:
        return len(await booked_periods(db, nik)) >= 12

    assert await wait_for(twelve)
    foreign = deregistration(nik, "2026-03", opd_code="DISHUB")
    own = deregistration(nik, "2026-06", opd_code="DISKOPINDAG")
    await publish(settings, TOPIC_REGISTRATIONS, [as_message(foreign), as_message(own)])

    rejected = await rejection_of(settings, str(foreign.event_id))
    assert [(e.field, e.code) for e in rejected.errors] == [
        ("opd_code", "deregistration_not_permitted")]
    assert "DISKOPINDAG" in rejected.errors[0].message

    # The enrolling OPD's own deregistration (same key, so after the foreign one) is what
    # stops the months: from 2026-06, not from 2026-03.
    async def reversed_six() -> bool:
        return await booked_periods(db, nik) == list(period_range("2025-12", 6))

    assert await wait_for(reversed_six), await booked_periods(db, nik)
