"""The ledger against real PostgreSQL: double entry, idempotent booking (also from two
connections at once, as two ledger processes), the budget ceiling and held contributions."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from services.domain.programme import Programme
from services.ledger import book
from services.ledger.budget import BudgetError, ensure_allocation, raise_allocation
from tests.support.ledger import NikSource, programme_copy, schedule

pytestmark = pytest.mark.integration

PREMIUM = 16_800
YEAR = ["2025-12", "2026-01", "2026-02", "2026-03", "2026-04", "2026-05",
        "2026-06", "2026-07", "2026-08", "2026-09", "2026-10", "2026-11"]


async def utilisation(conn: asyncpg.Connection, programme: str) -> asyncpg.Record:
    return await conn.fetchrow(
        "SELECT * FROM finance.budget_utilisation WHERE programme = $1", programme)


async def statuses(conn: asyncpg.Connection, programme: str) -> dict[str, int]:
    rows = await conn.fetch("SELECT status, count(*) AS n FROM finance.contributions "
                            "WHERE programme = $1 GROUP BY status", programme)
    return {r["status"]: r["n"] for r in rows}


async def test_every_transfer_balances_and_accounts_agree_with_the_books(
    conn: asyncpg.Connection, malang: Programme, niks: NikSource
) -> None:
    programme = programme_copy(malang, budget_idr=10**12)
    await ensure_allocation(conn, programme)
    workers = niks.take(6)
    await book.book_schedules(conn, [schedule(programme, n, YEAR) for n in workers])
    # the last worker is deregistered from 2026-06: six months reversed
    await book.book_schedules(conn, [schedule(programme, workers[-1], YEAR[6:], kind="cancelled")])

    # one posting per batch: an accrual carrying 72 months, a reversal carrying 6; every
    # month traces to its posting, and every posting adds up to its months
    kinds = await conn.fetch(
        """SELECT kind, count(DISTINCT transfer_id) AS transfers, count(*) AS months,
                  sum(amount_idr)::bigint AS idr
             FROM finance.journal_lines WHERE programme = $1 GROUP BY kind ORDER BY kind""",
        programme.id)
    assert [tuple(r) for r in kinds] == [
        ("accrual", 1, 72, 72 * PREMIUM), ("reversal", 1, 6, 6 * PREMIUM)]
    assert await conn.fetch("SELECT * FROM finance.journal_reconciliation") == []
    balances = {r["account"]: r["balance_idr"] for r in await conn.fetch(
        "SELECT account, balance_idr FROM finance.account_balances WHERE account LIKE $1",
        f"%{programme.id}")}
    assert balances == {f"expense:premium:{programme.id}": 66 * PREMIUM,
                        f"liability:bpjs_payable:{programme.id}": -66 * PREMIUM}
    # double entry: the whole journal sums to zero, every account is debit minus credit
    assert await conn.fetchval("SELECT sum(balance_idr) FROM finance.account_balances") == 0
    assert (await utilisation(conn, programme.id))["booked_idr"] == 66 * PREMIUM
    assert await statuses(conn, programme.id) == {"booked": 66, "cancelled": 6}



async def test_a_transfer_of_a_contribution_that_is_not_booked_is_refused(
    conn: asyncpg.Connection,
) -> None:
    with pytest.raises(asyncpg.ForeignKeyViolationError):
        await conn.execute(
            """INSERT INTO ledger.transfers (transfer_id, kind, debit_account, credit_account,
                   amount_idr, contribution_id)
               VALUES (gen_random_uuid(), 'settlement', 'liability:bpjs_payable:x',
                       'asset:cash:x', 16800, gen_random_uuid())""")

async def test_replaying_a_batch_books_nothing_twice(
    conn: asyncpg.Connection, malang: Programme, niks: NikSource
) -> None:
    programme = programme_copy(malang, budget_idr=10**12)
    await ensure_allocation(conn, programme)
    batch = [schedule(programme, n, YEAR) for n in niks.take(5)]
    first = await book.book_schedules(conn, batch)
    again = await book.book_schedules(conn, batch + batch)
    assert first.booked[programme.id] == 60
    assert sum(again.booked.values()) == 0 and sum(again.held.values()) == 0
    assert await conn.fetchval("SELECT count(*) FROM finance.journal_lines "
                               "WHERE programme = $1", programme.id) == 60
    assert (await utilisation(conn, programme.id))["booked_idr"] == 60 * PREMIUM


async def test_two_ledger_processes_booking_the_same_batch_book_it_once(
    ledger_url: str, conn: asyncpg.Connection, malang: Programme, niks: NikSource
) -> None:
    programme = programme_copy(malang, budget_idr=10**12)
    await ensure_allocation(conn, programme)
    batch = [schedule(programme, n, YEAR) for n in niks.take(40)]
    a, b = [await asyncpg.connect(ledger_url) for _ in range(2)]
    try:
        for c in (a, b):
            await book.prepare(c)
        results = await asyncio.gather(book.book_schedules(a, batch),
                                       book.book_schedules(b, list(reversed(batch))))
    finally:
        await a.close()
        await b.close()
    assert sum(r.booked[programme.id] for r in results) == 480
    assert await conn.fetchval("SELECT count(*) FROM ledger.contributions WHERE programme = $1",
                               programme.id) == 480
    assert await conn.fetchval(
        "SELECT count(*) FROM finance.journal_lines WHERE programme = $1", programme.id) == 480
    assert await conn.fetch("SELECT * FROM finance.journal_reconciliation") == []
    assert (await utilisation(conn, programme.id))["booked_idr"] == 480 * PREMIUM


async def test_the_ceiling_holds_exactly_at_the_boundary(
    conn: asyncpg.Connection, malang: Programme, niks: NikSource
) -> None:
    # room for exactly 25 months: two registrations (24) fit, the third books one month
    programme = programme_copy(malang, budget_idr=25 * PREMIUM)
    await ensure_allocation(conn, programme)
    first, second, third, fourth = niks.take(4)
    result = await book.book_schedules(conn, [schedule(programme, n, YEAR)
                                              for n in (first, second, third)])
    assert result.booked[programme.id] == 25
    assert result.held[programme.id] == 11
    row = await utilisation(conn, programme.id)
    assert (row["allocated_idr"], row["booked_idr"], row["remaining_idr"]) == (
        25 * PREMIUM, 25 * PREMIUM, 0)
    assert (row["held_idr"], row["held_contributions"]) == (11 * PREMIUM, 11)
    booked_third = await conn.fetch(
        "SELECT period FROM ledger.contributions WHERE nik = $1 ORDER BY period", third)
    assert [r["period"] for r in booked_third] == ["2025-12"]
    held = await conn.fetch(
        "SELECT nik, period, status FROM finance.contributions "
        "WHERE programme = $1 AND status = 'held' ORDER BY period", programme.id)
    assert [(r["nik"], r["period"]) for r in held] == [(third, p) for p in YEAR[1:]]

    # a later registration queues behind the held ones, even for a month with room
    later = await book.book_schedules(conn, [schedule(programme, fourth, YEAR[:1])])
    assert later.booked[programme.id] == 0 and later.held[programme.id] == 1

    # the database itself refuses to commit more than the allocation, whatever the code does
    with pytest.raises(asyncpg.CheckViolationError, match="budget_allocations_ceiling"):
        await conn.execute("UPDATE ledger.budget_allocations SET booked_idr = booked_idr + $2 "
                           "WHERE programme = $1", programme.id, PREMIUM)


async def test_two_processes_racing_for_the_last_rupiah_never_overspend(
    ledger_url: str, conn: asyncpg.Connection, malang: Programme, niks: NikSource
) -> None:
    programme = programme_copy(malang, budget_idr=30 * PREMIUM)
    await ensure_allocation(conn, programme)
    left = [schedule(programme, n, YEAR) for n in niks.take(3)]
    right = [schedule(programme, n, YEAR) for n in niks.take(3)]
    a, b = [await asyncpg.connect(ledger_url) for _ in range(2)]
    try:
        for c in (a, b):
            await book.prepare(c)
        results = await asyncio.gather(book.book_schedules(a, left),
                                       book.book_schedules(b, right))
    finally:
        await a.close()
        await b.close()
    assert sum(r.booked[programme.id] for r in results) == 30
    assert sum(r.held[programme.id] for r in results) == 42
    row = await utilisation(conn, programme.id)
    assert row["booked_idr"] == row["allocated_idr"] == 30 * PREMIUM
    assert await conn.fetchval("SELECT sum(amount_idr) FROM ledger.contributions "
                               "WHERE programme = $1", programme.id) == 30 * PREMIUM


async def test_raising_the_allocation_books_the_held_ones_oldest_first(
    conn: asyncpg.Connection, malang: Programme, niks: NikSource
) -> None:
    programme = programme_copy(malang, budget_idr=12 * PREMIUM)
    await ensure_allocation(conn, programme)
    first, second, third = niks.take(3)
    await book.book_schedules(conn, [schedule(programme, first, YEAR)])
    await book.book_schedules(conn, [schedule(programme, second, YEAR)])
    await book.book_schedules(conn, [schedule(programme, third, YEAR)])
    # the third worker deregisters from 2026-06 while held: those months never get booked
    cancel = await book.book_schedules(
        conn, [schedule(programme, third, YEAR[6:], kind="cancelled")])
    assert cancel.held_cancelled == 6

    previous, new, release = await raise_allocation(
        conn, programme=programme.id, amount_idr=15 * PREMIUM, reason="APBD-P 2025",
        changed_by="test")
    assert (previous, new) == (12 * PREMIUM, 27 * PREMIUM)
    assert (release.booked, release.booked_idr) == (15, 15 * PREMIUM)
    booked = await conn.fetch("SELECT nik, count(*) AS n FROM ledger.contributions "
                              "WHERE programme = $1 GROUP BY nik", programme.id)
    assert {r["nik"]: r["n"] for r in booked} == {first: 12, second: 12, third: 3}
    assert await statuses(conn, programme.id) == {"booked": 27, "held": 3, "cancelled": 6}

    # idempotent: raising again by the remaining need books the rest, never twice
    _, _, release = await raise_allocation(
        conn, programme=programme.id, amount_idr=10 * PREMIUM, reason="APBD-P 2025 (2)",
        changed_by="test")
    assert release.booked == 3
    again = await ensure_allocation(conn, programme)
    assert again.booked == 0
    row = await utilisation(conn, programme.id)
    assert (row["allocated_idr"], row["booked_idr"], row["held_idr"]) == (
        37 * PREMIUM, 30 * PREMIUM, 0)
    history = await conn.fetch(
        "SELECT previous_idr, allocated_idr, source, reason FROM finance.budget_changes "
        "WHERE programme = $1 ORDER BY change_id", programme.id)
    assert [tuple(r) for r in history] == [
        (0, 12 * PREMIUM, "configuration", f"programme configuration {programme.id}: budget_idr"),
        (12 * PREMIUM, 27 * PREMIUM, "command", "APBD-P 2025"),
        (27 * PREMIUM, 37 * PREMIUM, "command", "APBD-P 2025 (2)"),
    ]


async def test_an_allocation_changes_only_upwards_and_only_with_a_record(
    conn: asyncpg.Connection, malang: Programme
) -> None:
    programme = programme_copy(malang, budget_idr=1_000_000)
    await ensure_allocation(conn, programme)
    refused = [
        "UPDATE ledger.budget_allocations SET allocated_idr = 2000000 WHERE programme = $1",
        "UPDATE ledger.budget_allocations SET allocated_idr = 1 WHERE programme = $1",
        "DELETE FROM ledger.budget_allocations WHERE programme = $1",
        "DELETE FROM ledger.budget_allocation_changes WHERE programme = $1",
    ]
    for sql in refused:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute(sql, programme.id)
    with pytest.raises(BudgetError, match="positive"):
        await raise_allocation(conn, programme=programme.id, amount_idr=0, reason="x",
                               changed_by="t")
    with pytest.raises(BudgetError, match="no budget allocation"):
        await raise_allocation(conn, programme="nope", amount_idr=5, reason="x", changed_by="t")
    # a lower figure in the programme file is ignored, never lowers the allocation
    await ensure_allocation(conn, programme.model_copy(update={"budget_idr": 5}))
    assert (await utilisation(conn, programme.id))["allocated_idr"] == 1_000_000


async def test_a_programme_without_allocation_holds_everything(
    conn: asyncpg.Connection, malang: Programme, niks: NikSource
) -> None:
    programme = programme_copy(malang, budget_idr=0)
    result = await book.book_schedules(conn, [schedule(programme, niks.take()[0], YEAR[:2])])
    assert result.held[programme.id] == 2 and not result.booked
    reasons = await conn.fetch("SELECT DISTINCT reason FROM ledger.held_contributions "
                               "WHERE programme = $1", programme.id)
    assert [r["reason"] for r in reasons] == ["no_allocation"]
    row = await utilisation(conn, programme.id)
    assert (row["allocated_idr"], row["held_idr"]) == (0, 2 * PREMIUM)
