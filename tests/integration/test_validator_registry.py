"""The validator's registry in a real PostgreSQL: a batch decided in one transaction (state
and decision rows), a message that fails or that PostgreSQL refuses split out of it."""

from __future__ import annotations

import json

import asyncpg
import pytest

from schemas.events import TOPIC_REGISTRATIONS
from services.domain import errors as E
from services.domain.enrolment import WorkerState
from services.domain.programme import Programme
from services.ledger.budget import ensure_allocation
from services.validator.process import Incoming, Outcome, Source, decide_message, read_message
from services.validator.registry import decide_alone, decide_batch
from tests.support.ledger import programme_copy
from tests.support.workers import as_message, registration, unique_nik

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


async def test_a_message_that_fails_is_rejected_kept_as_a_dead_letter_and_the_rest_decided(
    conn: asyncpg.Connection, malang: Programme
) -> None:
    programmes = {malang.id: malang}
    events = [registration() for _ in range(3)]
    batch = [incoming(e, 1000 + i) for i, e in enumerate(events)]
    poison = batch[1]

    def decider(one: Incoming, state: WorkerState) -> Outcome:
        if one is poison:
            raise RuntimeError("a bug met this message")
        return decide_message(one, state, programmes)

    outcomes = await decide_batch(conn, batch, decider)
    assert [bool(o.schedules) for o in outcomes] == [True, False, True]
    assert outcomes[1].rejected is not None
    assert [e.code for e in outcomes[1].rejected.errors] == [E.INTERNAL_ERROR]
    letters = await conn.fetch(
        """SELECT reason, detail, value FROM ledger.dead_letters
            WHERE service = 'validator' AND "offset" = $1""", poison.source.offset)
    assert [(r["reason"], r["value"]) for r in letters] == [("internal_error", poison.value)]
    assert "RuntimeError" in letters[0]["detail"]
    decided = await conn.fetchval(
        "SELECT count(*) FROM registry.decisions WHERE event_id = ANY($1::uuid[])",
        [e.event_id for e in events])
    assert decided == 2  # the failed one is decided again when it comes again


async def test_a_message_postgresql_refuses_is_split_out_of_its_batch(
    conn: asyncpg.Connection, malang: Programme
) -> None:
    programmes = {malang.id: malang}
    events = [registration() for _ in range(3)]
    batch = [incoming(e, 2000 + i) for i, e in enumerate(events)]

    def decider(one: Incoming, state: WorkerState) -> Outcome:
        outcome = decide_message(one, state, programmes)
        if one is batch[1] and outcome.state is not None:
            # a state PostgreSQL refuses (jsonb takes no NUL), as a value the contract
            # does not bound yet would be
            (enrolment,) = outcome.state.enrollments
            outcome.state = outcome.state.model_copy(update={"enrollments": [
                enrolment.model_copy(update={"kecamatan": "Klo\x00jen"})]})
        return outcome

    with pytest.raises(asyncpg.PostgresError):
        await decide_batch(conn, batch, decider)
    outcomes = [await decide_alone(conn, one, decider) for one in batch]
    assert [bool(o.schedules) for o in outcomes] == [True, False, True]
    assert [e.code for e in outcomes[1].rejected.errors] == [E.INTERNAL_ERROR]  # type: ignore[union-attr]
    assert await conn.fetchval(
        """SELECT count(*) FROM ledger.dead_letters WHERE service = 'validator'
            AND "offset" = 2001""") == 1


async def test_a_warning_is_stored_with_the_decision(
    conn: asyncpg.Connection, malang: Programme
) -> None:
    programmes = {malang.id: malang}
    event = registration()
    worker = event.worker.model_copy(
        update={"birth_date": event.worker.birth_date.replace(day=1 if
                                                               event.worker.birth_date.day != 1
                                                               else 2)})
    event = event.model_copy(update={"worker": worker})
    (outcome,) = await decide_batch(conn, [incoming(event, 3000)],
                                    lambda i, s: decide_message(i, s, programmes))
    assert outcome.schedules and [w.code for w in outcome.warnings] == [
        E.NIK_BIRTH_DATE_MISMATCH]
    row = await conn.fetchrow("SELECT outcome, warnings FROM registry.decisions "
                              "WHERE event_id = $1", event.event_id)
    assert row["outcome"] == "accepted"
    assert [w["code"] for w in json.loads(row["warnings"])] == [E.NIK_BIRTH_DATE_MISMATCH]
