"""How the validator decides a batch when PostgreSQL fails it, on a real PostgreSQL with the
validator's own connection, registry and decisions: a connection PostgreSQL drops is waited
out (not ready meanwhile, ready again after) and the batch is decided once it is back; a
batch PostgreSQL refuses because of one of its messages is decided message by message at
once (no wait): the others are decided, that one is rejected as internal_error and kept as
a dead letter."""

from __future__ import annotations

import asyncio

import asyncpg

from schemas.events import TOPIC_REGISTRATIONS
from services.domain import errors as E
from services.domain.enrolment import WorkerState
from services.domain.programme import Programme
from services.runtime.settings import Settings
from services.validator.app import Health, Validator
from services.validator.process import Incoming, Outcome, Source, read_message
from tests.support.workers import as_message, registration


def incoming(event: object, offset: int) -> Incoming:
    key, value = as_message(event)  # type: ignore[arg-type]
    return read_message(key, value, Source(TOPIC_REGISTRATIONS, 0, offset))


class _Watched(Validator):
    """The validator as it runs, its readiness noted at every wait; ``refused`` is the one
    message whose state PostgreSQL refuses (jsonb takes no NUL), as a value the contract
    does not bound would be."""

    def __init__(self, url: str, malang: Programme, refused: Incoming | None = None) -> None:
        self.health = Health()
        super().__init__(Settings(database_url=url), {malang.id: malang},
                         None, None, self.health)  # type: ignore[arg-type]
        self.refused = refused
        self.readiness_at_waits: list[tuple[bool, str]] = []

    def _decide(self, incoming: Incoming, state: WorkerState) -> Outcome:
        outcome = super()._decide(incoming, state)
        if incoming is self.refused and outcome.state is not None:
            (enrolment,) = outcome.state.enrollments
            outcome.state = outcome.state.model_copy(update={"enrollments": [
                enrolment.model_copy(update={"kecamatan": "Klo\x00jen"})]})
        return outcome

    def _waiting(self, exc: BaseException, delay: float) -> None:
        super()._waiting(exc, delay)
        self.readiness_at_waits.append(self.health())


async def _decided(conn: asyncpg.Connection, batch: list[Incoming]) -> int:
    ids = [str(i.event.event_id) for i in batch if i.event is not None]
    found: int = await conn.fetchval(
        "SELECT count(*) FROM registry.decisions WHERE event_id::text = ANY($1::text[])", ids)
    return found


async def _waiting_on_a_lock(conn: asyncpg.Connection, pid: int) -> None:
    for _ in range(500):
        if await conn.fetchval("SELECT wait_event_type = 'Lock' FROM pg_stat_activity "
                               "WHERE pid = $1", pid):
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the validator's batch never reached PostgreSQL")


async def test_a_connection_postgresql_drops_is_waited_out_not_ready_meanwhile(
    conn: asyncpg.Connection, ledger_url: str, malang: Programme
) -> None:
    validator = _Watched(ledger_url, malang)
    first = await validator._connect()
    batch = [incoming(registration(), 3000 + i) for i in range(2)]
    try:
        async with conn.transaction():  # the batch waits inside PostgreSQL...
            await conn.execute("LOCK TABLE registry.worker_state IN SHARE MODE")
            deciding = asyncio.create_task(validator._decide_until_done(batch))
            await _waiting_on_a_lock(conn, first.get_server_pid())
            # ...and its connection is cut there, mid-transaction
            await conn.execute("SELECT pg_terminate_backend($1)", first.get_server_pid())
        outcomes = await asyncio.wait_for(deciding, 30)
        assert [bool(o.schedules) for o in outcomes] == [True, True]
        assert validator.readiness_at_waits == [(False, "waiting for PostgreSQL")]
        assert validator.health() == (True, "ok")
        assert validator._connection is not first
        assert await _decided(conn, batch) == 2
    finally:
        for connection in (first, validator._connection):
            if connection is not None and not connection.is_closed():
                await connection.close()


async def test_a_batch_refused_for_one_message_is_decided_one_by_one_at_once(
    conn: asyncpg.Connection, ledger_url: str, malang: Programme
) -> None:
    batch = [incoming(registration(), 4000 + i) for i in range(3)]
    validator = _Watched(ledger_url, malang, refused=batch[1])
    try:
        outcomes = await validator._decide_until_done(batch)
        assert [bool(o.schedules) for o in outcomes] == [True, False, True]
        rejected = outcomes[1].rejected
        assert rejected is not None
        assert [e.code for e in rejected.errors] == [E.INTERNAL_ERROR]
        assert validator.readiness_at_waits == []  # at once, never waiting
        assert validator.health() == (True, "ok")
        assert await _decided(conn, [batch[0], batch[2]]) == 2
        assert await conn.fetchval(
            """SELECT count(*) FROM ledger.dead_letters WHERE service = 'validator'
                AND "offset" = 4001""") == 1
    finally:
        if validator._connection is not None:
            await validator._connection.close()
