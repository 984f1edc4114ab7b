"""finance.registration_outcomes on a scratch ledger: every status an event
can end in, from its decision (registry.decisions) and the months the ledger booked for it
with the real booking code; and the submission tables refuse to be rewritten."""

from __future__ import annotations

import json
import uuid

import asyncpg
import pytest

from services.domain.programme import Programme
from services.ledger import book
from services.ledger.budget import ensure_allocation
from tests.support.ledger import NikSource, programme_copy, schedule

pytestmark = pytest.mark.integration

PREMIUM = 16_800
MONTHS = ["2025-12", "2026-01", "2026-02"]


async def decide(conn: asyncpg.Connection, event_id: uuid.UUID, nik: str, programme: str, *,
                 event_type: str = "registered", outcome: str = "accepted",
                 errors: list[dict[str, str]] | None = None,
                 schedule_ids: list[uuid.UUID] | None = None) -> None:
    await conn.execute(
        """INSERT INTO registry.decisions (event_id, event_type, nik, programme, opd_code,
               outcome, errors, schedule_ids, source_topic, source_partition, source_offset)
           VALUES ($1, $2, $3, $4, 'DISHUB', $5, $6::jsonb, $7, 'iuran.registrations.v1', 0, 0)""",
        event_id, event_type, nik, programme, outcome, json.dumps(errors or []),
        schedule_ids or [])


async def outcome(conn: asyncpg.Connection, event_id: uuid.UUID) -> asyncpg.Record:
    row = await conn.fetchrow("SELECT * FROM finance.registration_outcomes WHERE event_id = $1",
                              event_id)
    assert row is not None
    return row


async def test_every_status_of_an_event(conn: asyncpg.Connection, niks: NikSource,
                                        malang: Programme) -> None:
    tight = programme_copy(malang, budget_idr=4 * PREMIUM)  # the fifth active month is held
    other = programme_copy(malang, budget_idr=100 * PREMIUM)
    for programme in (tight, other):
        await ensure_allocation(conn, programme)
    booked_nik, held_nik, dup_nik, rejected_nik, quiet_nik = niks.take(5)

    booked = schedule(tight, booked_nik, MONTHS, opd_code="DISHUB")
    held = schedule(tight, held_nik, MONTHS, opd_code="DISHUB")
    first_payer = schedule(other, dup_nik, MONTHS[:1], opd_code="DINSOS")
    second_payer = schedule(tight, dup_nik, MONTHS[:1], opd_code="DISHUB",
                            event=f"{dup_nik}:second")
    stop = schedule(tight, booked_nik, MONTHS[2:], kind="cancelled", opd_code="DISHUB")
    for item in (booked, held, first_payer, second_payer):
        await decide(conn, item.registration_event_id, item.nik, item.programme,
                     schedule_ids=[item.schedule_id])
    await decide(conn, stop.registration_event_id, booked_nik, tight.id,
                 event_type="deregistered", schedule_ids=[stop.schedule_id])
    rejected, quiet = uuid.uuid4(), uuid.uuid4()
    await decide(conn, rejected, rejected_nik, tight.id, outcome="rejected", errors=[
        {"field": "worker.nik", "code": "duplicate_enrollment", "message": "covered"}])
    await decide(conn, quiet, quiet_nik, tight.id)
    pending = uuid.uuid4()

    # one at a time, in this order: 3 booked, a duplicate, 1 stopped (2 active), 2 + 1 held
    for item in (booked, first_payer, second_payer, stop, held):
        await book.book_schedules(conn, [item])

    found = await outcome(conn, booked.registration_event_id)
    assert (found["status"], found["booked_periods"], found["cancelled_periods"]) == (
        "booked", MONTHS[:2], MONTHS[2:])
    found = await outcome(conn, held.registration_event_id)
    assert (found["status"], found["booked_periods"], found["held_periods"]) == (
        "held", MONTHS[:2], MONTHS[2:])
    found = await outcome(conn, stop.registration_event_id)
    assert (found["status"], found["cancelled_periods"]) == ("cancelled", MONTHS[2:])
    found = await outcome(conn, second_payer.registration_event_id)
    assert (found["status"], found["duplicate_periods"]) == ("refused", MONTHS[:1])
    found = await outcome(conn, rejected)
    assert found["status"] == "rejected"
    assert [e["code"] for e in json.loads(found["errors"])] == ["duplicate_enrollment"]
    assert (await outcome(conn, quiet))["status"] == "accepted"
    assert await conn.fetchrow("SELECT 1 FROM finance.registration_outcomes "
                               "WHERE event_id = $1", pending) is None


async def test_a_recorded_submission_is_never_rewritten(conn: asyncpg.Connection) -> None:
    submission_id = uuid.uuid4()
    await conn.execute(
        """INSERT INTO registry.submissions (submission_id, opd_code, token_name, request_hash,
               source, row_count) VALUES ($1, 'DISHUB', 'dishub', 'h', 'csv', 1)""",
        submission_id)
    await conn.execute(
        """INSERT INTO registry.submission_rows (submission_id, row_number, event_id, event)
           VALUES ($1, 2, $2, '{}')""", submission_id, uuid.uuid4())
    await conn.execute("UPDATE registry.submission_rows SET published_at = now() "
                       "WHERE submission_id = $1", submission_id)
    for statement in (
        "UPDATE registry.submission_rows SET published_at = now() WHERE submission_id = $1",
        "UPDATE registry.submission_rows SET event = '[]' WHERE submission_id = $1",
        "DELETE FROM registry.submission_rows WHERE submission_id = $1",
        "UPDATE registry.submissions SET opd_code = 'DINSOS' WHERE submission_id = $1",
    ):
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
            await conn.execute(statement, submission_id)
