"""One payer per worker-month under every path: a generation-0 booking waits for a later
generation's uncommitted booking of the month (the unique slot), so two connections booking
one month for two payers at the same time (the stream and another ledger process, or the
stream and a budget release) run one after the other, and the second finds the month taken."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import pytest

from services.domain.programme import Programme
from services.ledger import book
from services.ledger.budget import ensure_allocation, raise_allocation
from tests.support import faults
from tests.support.ledger import NikSource, insert_booking, programme_copy, schedule

pytestmark = pytest.mark.integration

MONTH = ["2026-03"]


async def _blocked_or_done(conn: asyncpg.Connection, pid: int, task: asyncio.Task[Any]) -> bool:
    """The booking finished, or it waits for a lock the other writer holds."""
    return task.done() or bool(await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE pid = $1 AND NOT granted)", pid))


async def _month_closed_while_held(conn: asyncpg.Connection, malang: Programme,
                                   nik: str) -> None:
    """Generation 0 of the month held (no allocation) and cancelled while held: the month
    may be booked again (generation 1), and nothing of it is booked."""
    unfunded = programme_copy(malang, budget_idr=0)
    held = await book.book_schedules(conn, [schedule(unfunded, nik, MONTH)])
    assert sum(held.held.values()) == 1
    cancelled = await book.book_schedules(
        conn, [schedule(unfunded, nik, MONTH, kind="cancelled")])
    assert cancelled.held_cancelled == 1


async def _book_again_by_stream(conn: asyncpg.Connection, malang: Programme, nik: str) -> None:
    again = programme_copy(malang, budget_idr=10**12)
    await ensure_allocation(conn, again)
    result = await book.book_schedules(conn, [schedule(again, nik, MONTH, generation=1)])
    assert sum(result.booked.values()) == 1


async def _book_again_by_release(conn: asyncpg.Connection, malang: Programme,
                                 nik: str) -> None:
    again = programme_copy(malang, budget_idr=0)
    await ensure_allocation(conn, again)
    async with conn.transaction():  # held now (no budget), released by a raise below
        held = await book.book_schedules(conn, [schedule(again, nik, MONTH, generation=1)])
    assert sum(held.held.values()) == 1
    _, _, release = await raise_allocation(conn, programme=again.id, amount_idr=10**9,
                                           reason="test", changed_by="test")
    assert release.booked == 1


@pytest.mark.parametrize("other_writer", [_book_again_by_stream, _book_again_by_release],
                         ids=["stream", "budget_release"])
async def test_two_payers_booking_one_month_at_once_end_with_one_active(
    conn: asyncpg.Connection, ledger_url: str, malang: Programme, niks: NikSource,
    other_writer: Callable[[asyncpg.Connection, Programme, str], Awaitable[None]],
) -> None:
    nik = niks.take()[0]
    await _month_closed_while_held(conn, malang, nik)
    first = programme_copy(malang, budget_idr=10**12)
    await ensure_allocation(conn, first)

    other = await asyncpg.connect(ledger_url)
    await book.prepare(other)
    try:
        transaction = other.transaction()
        await transaction.start()
        # The other writer books generation 1 of the month and has not committed yet.
        await other_writer(other, malang, nik)
        stream = asyncio.create_task(
            book.book_schedules(conn, [schedule(first, nik, MONTH)]))
        pid = conn.get_server_pid()
        assert await faults.wait_for(
            lambda: _blocked_or_done(other, pid, stream), within=30, interval=0.05), \
            "the booking neither waited for the other writer nor finished"
        await transaction.commit()
        result = await stream
    finally:
        await other.close()

    rows = await conn.fetch(
        """SELECT programme, status, generation FROM finance.contributions
            WHERE nik = $1 AND period = $2 AND status IN ('booked', 'billed', 'paid')""",
        nik, MONTH[0])
    assert len(rows) == 1, f"two active payers for one worker-month: {rows}"
    assert rows[0]["generation"] == 1
    # The generation-0 row that lost ends visible: a duplicate attempt.
    assert sum(result.duplicates.values()) == 1
    assert await conn.fetchval(
        "SELECT count(*) FROM ledger.duplicate_attempts WHERE nik = $1 AND programme = $2",
        nik, first.id) == 1


async def test_the_database_refuses_a_second_active_payer_of_a_worker_month(
    conn: asyncpg.Connection, malang: Programme, niks: NikSource
) -> None:
    """Without the booking rules (a writer that bypasses them): the database itself refuses
    a second active payer of a worker-month whose second booking (slot 1) is active."""
    nik = niks.take()[0]
    await _month_closed_while_held(conn, malang, nik)
    await _book_again_by_stream(conn, malang, nik)
    slot = await conn.fetchval("SELECT max(slot) FROM ledger.contributions "
                               "WHERE nik = $1 AND period = $2", nik, MONTH[0])
    first = programme_copy(malang, budget_idr=10**12)
    with pytest.raises(asyncpg.UniqueViolationError, match="one_booking_per_slot"):
        await insert_booking(conn, first, nik, MONTH[0], slot=slot)
    with pytest.raises(asyncpg.ForeignKeyViolationError, match="previous_slot_cancelled"):
        await insert_booking(conn, first, nik, MONTH[0], slot=slot + 1)
