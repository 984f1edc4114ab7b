"""A BPJS rejection the ledger takes before the worker's months reach it, on the real
processes (broker, validator, ledger service, API, PostgreSQL): the months of the
registration BPJS judged are cancelled when they arrive, with BPJS's reason on the worker;
the budget is not spent; the OPD's resubmission after the rejection is booked; and a worker
waiting for budget is not released for a rejected worker."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx
import pytest

from schemas.events import (
    TOPIC_BPJS_VERIFICATIONS,
    TOPIC_CONTRIBUTIONS,
    TOPIC_REGISTRATIONS,
    BpjsVerification,
    ContributionSchedule,
)
from services.domain.programme import Programme, load_programmes
from services.ledger import book
from services.ledger.budget import ensure_allocation
from services.runtime.settings import Settings
from services.runtime.stack import ServiceProcesses
from tests.support.faults import GROUPS
from tests.support.gateway import (
    DISNAKER,
    base_url,
    template_row,
    upload,
)
from tests.support.kafka import publish
from tests.support.ledger import NikSource, programme_copy, schedule
from tests.support.settle import handled
from tests.support.workers import as_message, registration

pytestmark = pytest.mark.integration

VERDICTS = ((GROUPS["ledger"], TOPIC_BPJS_VERIFICATIONS),)
LEDGER = ((GROUPS["ledger"], TOPIC_CONTRIBUTIONS),)
PIPELINE = ((GROUPS["validator"], TOPIC_REGISTRATIONS), (GROUPS["ledger"], TOPIC_CONTRIBUTIONS))
NIKS = NikSource(region=11)
PREMIUM = 16_800
REASON = "NIK tidak sesuai data Dukcapil"
JUDGED_AT = datetime(2025, 12, 5, 9, tzinfo=UTC)  # after the schedules' registrations


def _malang() -> Programme:
    return load_programmes(Settings().programmes_dir)["malang-2025"]


async def _reject(settings: Settings, programme: str, nik: str,
                  verified_at: datetime | None = None) -> None:
    verdict = BpjsVerification(
        verification_id=uuid.uuid4(), programme=programme, nik=nik, status="rejected",
        reason_code="R02", reason=REASON, verified_at=verified_at or settings.now())
    await publish(settings, TOPIC_BPJS_VERIFICATIONS,
                  [(nik.encode(), verdict.model_dump_json().encode())])
    await handled(settings, VERDICTS)


async def _through_the_ledger(settings: Settings, *schedules: ContributionSchedule) -> None:
    await publish(settings, TOPIC_CONTRIBUTIONS,
                  [(s.nik.encode(), s.model_dump_json().encode()) for s in schedules])
    await handled(settings, LEDGER)


async def _statuses(db: asyncpg.Pool, programme: str, nik: str) -> list[tuple[str, int]]:
    rows = await db.fetch("SELECT status, generation FROM finance.contributions "
                          "WHERE programme = $1 AND nik = $2 ORDER BY period, generation",
                          programme, nik)
    return [(r["status"], r["generation"]) for r in rows]


async def _booked_idr(db: asyncpg.Pool, programme: Programme) -> int:
    return int(await db.fetchval(
        "SELECT booked_idr FROM ledger.budget_allocations WHERE programme = $1 "
        "AND funding_source = $2", programme.id, programme.funding_source))


async def test_a_rejection_taken_before_the_months_arrive_cancels_them_and_the_resubmission_books(
    stack: ServiceProcesses, settings: Settings, db: asyncpg.Pool
) -> None:
    malang = _malang()
    # BPJS judged the registration sent a minute ago; its verdict overtakes the months
    sent = settings.now() - timedelta(minutes=2)
    worker = registration(opd_code="DISNAKER").model_copy(update={"occurred_at": sent})
    nik = worker.worker.nik
    await _reject(settings, malang.id, nik, sent + timedelta(minutes=1))
    spent = await _booked_idr(db, malang)

    await publish(settings, TOPIC_REGISTRATIONS, [as_message(worker)])
    await handled(settings, PIPELINE)

    assert await _statuses(db, malang.id, nik) == [("cancelled", 0)] * 12
    assert await _booked_idr(db, malang) == spent  # the budget is not spent
    assert await db.fetchval("SELECT count(*) FROM ledger.bpjs_cancelled_months m "
                             "JOIN finance.bpjs_members b USING (verification_id) "
                             "WHERE m.nik = $1 AND b.status = 'rejected'", nik) == 12
    assert await db.fetchval("SELECT cancelled_months FROM finance.bpjs_members "
                             "WHERE nik = $1", nik) == 12
    assert not await db.fetch("SELECT * FROM finance.journal_reconciliation")
    async with httpx.AsyncClient(base_url=base_url(settings), timeout=30) as client:
        seen = (await client.get(f"/v1/workers/{nik}", headers=DISNAKER)).json()
        assert (seen["status"], seen["bpjs_status"], seen["bpjs_reason_code"],
                seen["bpjs_reason"]) == ("stopped", "rejected", "R02", REASON), seen
        event = (await client.get(f"/v1/events/{worker.event_id}", headers=DISNAKER)).json()
        assert (event["status"], len(event["cancelled_periods"]), event["booked_periods"],
                event["bpjs_reason_code"]) == ("cancelled", 12, [], "R02"), event

        # the OPD corrects the worker and sends it again: BPJS has not judged this one
        _, (row,) = await upload(client, [template_row(worker, phone="081299990002")],
                                 DISNAKER)
        assert (row["status"], len(row["booked_periods"])) == ("booked", 12), row
    assert await _statuses(db, malang.id, nik) == [("cancelled", 0), ("booked", 1)] * 12
    assert await _booked_idr(db, malang) == spent + 12 * PREMIUM
    assert not await db.fetch("SELECT * FROM finance.journal_reconciliation")


async def test_a_worker_rejected_first_is_not_held_nor_released_when_room_is_freed(
    stack: ServiceProcesses, settings: Settings, database_url: str, db: asyncpg.Pool
) -> None:
    programme = programme_copy(_malang(), budget_idr=PREMIUM)  # room for one month
    paid, rejected, waiting = NIKS.take(3)
    connection = await asyncpg.connect(database_url)
    try:
        await book.prepare(connection)
        await ensure_allocation(connection, programme)
    finally:
        await connection.close()
    await _through_the_ledger(settings, schedule(programme, paid, ["2025-12"]))
    await _reject(settings, programme.id, rejected, JUDGED_AT)

    # the rejected worker's month arrives first, then another worker's: no room for either
    await _through_the_ledger(settings, schedule(programme, rejected, ["2025-12"]))
    await _through_the_ledger(settings, schedule(programme, waiting, ["2025-12"]))
    assert await _statuses(db, programme.id, rejected) == [("cancelled", 0)]
    assert await _statuses(db, programme.id, waiting) == [("held", 0)]

    # BPJS rejects the paid worker too: its month is cancelled and the room goes to the
    # worker that waits, not to the one BPJS rejected
    await _reject(settings, programme.id, paid, JUDGED_AT)
    assert await _statuses(db, programme.id, paid) == [("cancelled", 0)]
    assert await _statuses(db, programme.id, rejected) == [("cancelled", 0)]
    assert await _statuses(db, programme.id, waiting) == [("booked", 0)]
    assert await _booked_idr(db, programme) == PREMIUM
    assert not await db.fetch("SELECT * FROM finance.journal_reconciliation")
