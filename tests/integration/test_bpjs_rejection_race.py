"""A BPJS rejection and a booking of the same worker in two transactions at the same time:
whichever commits first, the other sees it. The rejection waits for the booking of the
programme's months in flight (the allocations' row locks), then cancels what it booked; a
booking that waits for a rejection in flight then cancels its months on arrival. Without
that, each would read the ledger before the other committed, and the worker's months would
stay booked although BPJS rejected the worker."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import asyncpg
import pytest

from schemas.events import BpjsVerification
from services.domain.programme import Programme
from services.ledger import book
from services.ledger.bpjs_verdicts import apply_verifications
from services.ledger.budget import ensure_allocation
from tests.support import faults
from tests.support.ledger import NikSource, programme_copy, schedule

pytestmark = pytest.mark.integration

T = TypeVar("T")

MONTHS = ["2026-03", "2026-04"]
REGISTERED = datetime(2025, 11, 25, 8, 0, tzinfo=UTC)
REJECTED = datetime(2025, 12, 1, 9, 0, tzinfo=UTC)  # after the registration


def _rejection(programme: Programme, nik: str) -> BpjsVerification:
    return BpjsVerification(verification_id=uuid.uuid4(), programme=programme.id, nik=nik,
                            status="rejected", reason_code="R02",
                            reason="NIK tidak sesuai data Dukcapil", verified_at=REJECTED)


async def _waits_or_done(conn: asyncpg.Connection, pid: int, task: asyncio.Task[Any]) -> bool:
    """The other transaction finished, or waits for a lock."""
    return task.done() or bool(await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE pid = $1 AND NOT granted)", pid))


async def _live_months(conn: asyncpg.Connection, programme: Programme, nik: str) -> list[str]:
    return [r["status"] for r in await conn.fetch(
        """SELECT status FROM finance.contributions
            WHERE programme = $1 AND nik = $2 AND status IN ('booked', 'held', 'billed')""",
        programme.id, nik)]


@pytest.fixture
async def worker(conn: asyncpg.Connection, malang: Programme,
                 niks: NikSource) -> tuple[Programme, str]:
    """A programme with room for every month, and a worker of it with nothing booked."""
    programme = programme_copy(malang, budget_idr=10**12)
    await ensure_allocation(conn, programme)
    return programme, niks.take()[0]


async def _while_uncommitted(
    conn: asyncpg.Connection, ledger_url: str,
    first: Callable[[asyncpg.Connection], Awaitable[object]],
    then: Callable[[asyncpg.Connection], Awaitable[T]],
) -> T:
    """``first`` on a connection of its own in a transaction left open; ``then`` on
    ``conn`` meanwhile, until it waits for a lock (or is done); then the commit of
    ``first``, and the result of ``then``."""
    other = await asyncpg.connect(ledger_url)
    await book.prepare(other)
    try:
        transaction = other.transaction()
        await transaction.start()
        await first(other)
        task = asyncio.create_task(then(conn))
        assert await faults.wait_for(
            lambda: _waits_or_done(other, conn.get_server_pid(), task),
            within=30, interval=0.05), "neither waited nor finished"
        await transaction.commit()
        return await task
    finally:
        await other.close()


async def test_a_rejection_taken_while_the_months_are_being_booked_cancels_them(
    conn: asyncpg.Connection, ledger_url: str, worker: tuple[Programme, str]
) -> None:
    programme, nik = worker

    async def booking(connection: asyncpg.Connection) -> None:
        # decided and written, not committed while the rejection is taken
        booked = await book.book_schedules(
            connection, [schedule(programme, nik, MONTHS, occurred_at=REGISTERED)])
        assert sum(booked.booked.values()) == len(MONTHS)

    taken = await _while_uncommitted(
        conn, ledger_url, booking,
        lambda connection: apply_verifications(connection, [_rejection(programme, nik)]))
    assert taken.cancelled_months == len(MONTHS)
    assert await _live_months(conn, programme, nik) == []


async def test_months_booked_while_a_rejection_is_being_taken_are_cancelled_on_arrival(
    conn: asyncpg.Connection, ledger_url: str, worker: tuple[Programme, str]
) -> None:
    programme, nik = worker
    # BPJS's rejection recorded, not committed while the months arrive
    result = await _while_uncommitted(
        conn, ledger_url,
        lambda connection: apply_verifications(connection, [_rejection(programme, nik)]),
        lambda connection: book.book_schedules(
            connection, [schedule(programme, nik, MONTHS, occurred_at=REGISTERED)]))
    assert sum(result.booked.values()) == 0
    assert await _live_months(conn, programme, nik) == []
