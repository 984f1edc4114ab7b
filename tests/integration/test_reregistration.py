"""A worker registered, deregistered and registered again is paid again: the months covered
a second time are a new generation of the worker-month, booked next to the cancelled one,
and the database still refuses two active payers for one worker-month."""

from __future__ import annotations

import asyncio
import time
from datetime import date

import asyncpg
import pytest

from schemas.events import TOPIC_REGISTRATIONS, ContributionSchedule
from services.domain.enrolment import WorkerState, decide, empty_state
from services.domain.periods import period_range
from services.domain.programme import Billing, Programme
from services.domain.schedule import contribution_id
from services.ledger import book
from services.ledger.bills import issue_bill
from services.ledger.budget import ensure_allocation, raise_allocation
from services.runtime.settings import Settings
from services.runtime.stack import ServiceProcesses
from tests.support.kafka import publish
from tests.support.ledger import IN_FISCAL_2025, insert_booking, programme_copy, schedule
from tests.support.workers import as_message, deregistration, registration, unique_nik

pytestmark = pytest.mark.integration

PREMIUM = 16_800
TODAY = date(2025, 11, 26)
YEAR = list(period_range("2025-12", 12))
KEPT = YEAR[:3]  # 2025-12 .. 2026-02: paid before the deregistration from 2026-03
AGAIN = list(period_range("2026-06", 6))  # 2026-06 .. 2026-11: paid again


async def funded(conn: asyncpg.Connection, malang: Programme, budget_idr: int = 10**12,
                 name: str | None = None) -> Programme:
    programme = programme_copy(malang, budget_idr=budget_idr, name=name, billing=Billing())
    await ensure_allocation(conn, programme)
    return programme


class Worker:
    """One NIK through the validator's rules, as the validator's table would keep it."""

    def __init__(self, programmes: list[Programme]) -> None:
        self.nik = unique_nik()
        self.programmes = {p.id: p for p in programmes}
        self.state: WorkerState = empty_state()
        self.schedules: list[ContributionSchedule] = []

    def _decide(self, event: object) -> list[ContributionSchedule]:
        decision = decide(self.state, event, self.programmes, TODAY)  # type: ignore[arg-type]
        assert decision.errors == [], decision.errors
        self.state = decision.state if decision.state is not None else self.state
        self.schedules += decision.schedules
        return decision.schedules

    def register(self, programme: Programme, start: str = "2025-12",
                 months: int = 12) -> list[ContributionSchedule]:
        return self._decide(registration(nik=self.nik, programme=programme.id,
                                         coverage_start=start, months=months))

    def deregister(self, programme: Programme, period: str) -> list[ContributionSchedule]:
        return self._decide(deregistration(self.nik, period, programme=programme.id))


async def months(conn: asyncpg.Connection, nik: str) -> list[tuple[str, str, int]]:
    rows = await conn.fetch(
        """SELECT period, status, generation FROM finance.contributions WHERE nik = $1
            ORDER BY period, generation""", nik)
    return [(r["period"], r["status"], r["generation"]) for r in rows]


async def active(conn: asyncpg.Connection, nik: str) -> list[str]:
    return [p for p, status, _ in await months(conn, nik)
            if status in ("booked", "billed", "paid")]


async def journal(conn: asyncpg.Connection, programme: str) -> dict[str, tuple[int, int]]:
    rows = await conn.fetch(
        """SELECT kind, count(*) AS n, sum(amount_idr)::bigint AS idr
             FROM finance.journal_lines WHERE programme = $1 GROUP BY kind""", programme)
    return {r["kind"]: (r["n"], r["idr"]) for r in rows}


async def booked_idr(conn: asyncpg.Connection, programme: str) -> int:
    return await conn.fetchval(
        "SELECT booked_idr FROM ledger.budget_allocations WHERE programme = $1", programme)


async def test_a_worker_registered_again_is_booked_again_and_replays_book_nothing(
    conn: asyncpg.Connection, malang: Programme
) -> None:
    programme = await funded(conn, malang)
    worker = Worker([programme])
    first = await book.book_schedules(conn, worker.register(programme))
    stop = await book.book_schedules(conn, worker.deregister(programme, "2026-03"))
    assert first.booked[programme.id] == 12 and stop.reversed[programme.id] == 9

    again = worker.register(programme, "2026-06", 6)
    assert {c.generation for s in again for c in s.contributions} == {1}
    result = await book.book_schedules(conn, again)
    assert result.booked[programme.id] == 6
    assert sum(result.duplicates.values()) == 0  # not a duplicate of the cancelled months

    assert await active(conn, worker.nik) == KEPT + AGAIN
    assert await months(conn, worker.nik) == sorted(
        [(p, "booked", 0) for p in KEPT]
        + [(p, "cancelled", 0) for p in YEAR[3:]]
        + [(p, "booked", 1) for p in AGAIN], key=lambda m: (m[0], m[2]))
    ids = {r["period"]: r["contribution_id"] for r in await conn.fetch(
        "SELECT period, contribution_id FROM ledger.contributions WHERE nik = $1 "
        "AND generation = 1", worker.nik)}
    assert ids == {p: contribution_id(programme.id, worker.nik, p, 1) for p in AGAIN}

    # the journal: 18 accruals, 9 reversals; 9 months payable; every account balances
    assert await journal(conn, programme.id) == {"accrual": (18, 18 * PREMIUM),
                                                 "reversal": (9, 9 * PREMIUM)}
    balances = {r["account"]: r["balance_idr"] for r in await conn.fetch(
        "SELECT account, balance_idr FROM finance.account_balances WHERE account LIKE $1",
        f"%:{programme.id}")}
    assert balances == {f"expense:premium:{programme.id}": 9 * PREMIUM,
                        f"liability:bpjs_payable:{programme.id}": -9 * PREMIUM}
    assert await conn.fetchval("SELECT sum(balance_idr) FROM finance.account_balances") == 0
    assert await booked_idr(conn, programme.id) == 9 * PREMIUM

    # everything again, one schedule at a time and all in one batch: nothing changes
    for schedules in [[s] for s in worker.schedules] + [worker.schedules * 2]:
        replay = await book.book_schedules(conn, schedules)
        assert (sum(replay.booked.values()), sum(replay.held.values()),
                sum(replay.reversed.values()), sum(replay.duplicates.values())) == (0, 0, 0, 0)
    assert await journal(conn, programme.id) == {"accrual": (18, 18 * PREMIUM),
                                                 "reversal": (9, 9 * PREMIUM)}
    assert await active(conn, worker.nik) == KEPT + AGAIN
    assert await conn.fetchval(
        "SELECT count(*) FROM ledger.duplicate_attempts WHERE nik = $1", worker.nik) == 0


async def test_registered_deregistered_and_registered_again_in_one_batch(
    conn: asyncpg.Connection, malang: Programme
) -> None:
    programme = await funded(conn, malang)
    worker = Worker([programme])
    worker.register(programme)
    worker.deregister(programme, "2026-03")
    worker.register(programme, "2026-06", 6)
    worker.deregister(programme, "2026-09")  # and stopped again: generation 1 cancelled
    worker.register(programme, "2026-10", 2)  # generation 2
    result = await book.book_schedules(conn, worker.schedules)
    assert result.booked[programme.id] == 12 + 6 + 2
    assert result.reversed[programme.id] == 9 + 3
    assert await active(conn, worker.nik) == KEPT + AGAIN[:3] + ["2026-10", "2026-11"]
    assert [g for p, status, g in await months(conn, worker.nik)
            if status == "booked"] == [0, 0, 0, 1, 1, 1, 2, 2]
    assert await booked_idr(conn, programme.id) == 8 * PREMIUM


async def test_a_month_the_province_stopped_paying_is_booked_for_the_city(
    conn: asyncpg.Connection, malang: Programme
) -> None:
    province = await funded(conn, malang)
    city = await funded(conn, malang)
    worker = Worker([province, city])
    await book.book_schedules(conn, worker.register(province))
    await book.book_schedules(conn, worker.deregister(province, "2026-04"))
    result = await book.book_schedules(conn, worker.register(city, "2026-04", 8))
    assert result.booked[city.id] == 8 and sum(result.duplicates.values()) == 0
    rows = await conn.fetch(
        """SELECT programme, period FROM finance.contributions
            WHERE nik = $1 AND status = 'booked' ORDER BY period""", worker.nik)
    assert [(r["programme"], r["period"]) for r in rows] == (
        [(province.id, p) for p in YEAR[:4]] + [(city.id, p) for p in YEAR[4:]])
    assert await booked_idr(conn, province.id) == 4 * PREMIUM
    assert await booked_idr(conn, city.id) == 8 * PREMIUM


async def test_a_second_payer_for_an_active_month_is_still_a_duplicate_attempt(
    conn: asyncpg.Connection, malang: Programme
) -> None:
    programme = await funded(conn, malang)
    other = await funded(conn, malang)
    worker = Worker([programme])
    await book.book_schedules(conn, worker.register(programme))
    await book.book_schedules(conn, worker.deregister(programme, "2026-03"))
    await book.book_schedules(conn, worker.register(programme, "2026-06", 6))
    gen1 = {r["period"]: r["contribution_id"] for r in await conn.fetch(
        "SELECT period, contribution_id FROM ledger.contributions WHERE nik = $1 "
        "AND generation = 1", worker.nik)}
    gen0 = {r["period"]: r["contribution_id"] for r in await conn.fetch(
        "SELECT period, contribution_id FROM ledger.contributions WHERE nik = $1 "
        "AND generation = 0", worker.nik)}

    # another programme pays an active month of generation 0, or of generation 1 (its first
    # time, or as a later generation): duplicate attempts. A later generation while
    # generation 1 is active says that generation 1 was cancelled: it waits for that
    # cancellation (whichever arrives first), booking nothing meanwhile.
    attempts = [
        schedule(other, worker.nik, ["2026-01"], event="g0-kept"),
        schedule(other, worker.nik, ["2026-06"], event="g0-again"),
        schedule(other, worker.nik, ["2026-07"], generation=1, event="g1"),
        schedule(other, worker.nik, ["2026-08"], generation=2, event="g2"),
    ]
    result = await book.book_schedules(conn, attempts)
    assert sum(result.booked.values()) == 0 and result.held[other.id] == 1
    assert result.duplicates[other.id] == 3
    occupied_by = {r["period"]: r["occupied_by"] for r in await conn.fetch(
        "SELECT period, occupied_by FROM ledger.duplicate_attempts WHERE nik = $1", worker.nik)}
    # each held by the active payer of the month
    assert occupied_by == {"2026-01": gen0["2026-01"], "2026-06": gen1["2026-06"],
                       "2026-07": gen1["2026-07"]}
    assert await active(conn, worker.nik) == KEPT + AGAIN
    history = await conn.fetch(
        """SELECT event, generation, detail FROM finance.worker_history
            WHERE nik = $1 AND period = '2026-08' ORDER BY at, event""", worker.nik)
    assert [(r["event"], r["generation"]) for r in history] == [
        ("booked", 0), ("cancelled", 0), ("booked", 1), ("held", 2)]
    assert history[-1]["detail"] == "awaiting_cancellation"


async def test_a_generation_whose_predecessor_is_not_cancelled_is_refused(
    conn: asyncpg.Connection, malang: Programme
) -> None:
    programme = await funded(conn, malang)
    worker = Worker([programme])
    await book.book_schedules(conn, worker.register(programme))

    # through the ledger: generation 1 while generation 0 is active waits for generation 0's
    # cancellation, booking nothing
    result = await book.book_schedules(
        conn, [schedule(programme, worker.nik, YEAR[6:], generation=1)])
    assert sum(result.booked.values()) == 0 and result.held[programme.id] == 6

    # directly in the database: refused whatever the code does. Slot 1 of a month while its
    # slot 0 is active (not cancelled), and slot 0 a second time.
    with pytest.raises(asyncpg.ForeignKeyViolationError, match="previous_slot_cancelled"):
        await insert_booking(conn, programme, worker.nik, "2026-06", slot=1, generation=1)
    with pytest.raises(asyncpg.UniqueViolationError, match="one_booking_per_slot"):
        await insert_booking(conn, programme, worker.nik, "2026-06", slot=0)
    # once generation 0 is cancelled, the generation 1 months that waited for it are booked
    # (slot 1); then slot 2 does not go in while slot 1 is active
    await book.book_schedules(conn, worker.deregister(programme, "2026-06"))
    assert await active(conn, worker.nik) == YEAR
    with pytest.raises(asyncpg.ForeignKeyViolationError, match="previous_slot_cancelled"):
        await insert_booking(conn, programme, worker.nik, "2026-06", slot=2, generation=2)


async def test_two_ledgers_booking_the_same_month_again_book_it_once(
    ledger_url: str, conn: asyncpg.Connection, malang: Programme
) -> None:
    province = await funded(conn, malang)
    city = await funded(conn, malang)
    workers = [Worker([province]) for _ in range(30)]
    for w in workers:
        await book.book_schedules(conn, w.register(province) + w.deregister(province, "2026-03"))
    # the city and a second province programme both pay the months again, as generation 1,
    # from two connections at once (two ledger processes; different allocations)
    other = await funded(conn, malang)
    a_batch = [schedule(city, w.nik, YEAR[3:], generation=1) for w in workers]
    b_batch = [schedule(other, w.nik, YEAR[3:], generation=1) for w in reversed(workers)]
    a, b = [await asyncpg.connect(ledger_url) for _ in range(2)]
    try:
        for c in (a, b):
            await book.prepare(c)
        results = await asyncio.gather(book.book_schedules(a, a_batch),
                                       book.book_schedules(b, b_batch))
    finally:
        await a.close()
        await b.close()
    booked = sum(sum(r.booked.values()) for r in results)
    duplicates = sum(sum(r.duplicates.values()) for r in results)
    assert (booked, duplicates) == (30 * 9, 30 * 9)
    counts = await conn.fetch(
        """SELECT nik, period, count(*) AS payers FROM finance.contributions
            WHERE nik = ANY($1::text[]) AND status IN ('booked', 'billed', 'paid')
            GROUP BY nik, period""", [w.nik for w in workers])
    assert len(counts) == 30 * 12 and {r["payers"] for r in counts} == {1}


async def test_the_database_serialises_two_transactions_booking_one_month_again(
    ledger_url: str, conn: asyncpg.Connection, malang: Programme
) -> None:
    """Two transactions book a cancelled month again at once: the second waits on the
    unique (nik, period, slot) for the first to commit, then is refused."""
    programme = await funded(conn, malang)
    worker = Worker([programme])
    await book.book_schedules(conn, worker.register(programme)
                              + worker.deregister(programme, "2026-03"))
    first, second = [await asyncpg.connect(ledger_url) for _ in range(2)]
    try:
        tx = first.transaction()
        await tx.start()
        await insert_booking(first, programme, worker.nik, "2026-06", slot=1, generation=1)

        async def again() -> None:
            async with second.transaction():
                await insert_booking(second, programme, worker.nik, "2026-06", slot=1,
                                     generation=2)

        waiting = asyncio.create_task(again())
        await asyncio.sleep(0.5)
        assert not waiting.done()  # waits for the first transaction's row
        await tx.commit()
        with pytest.raises(asyncpg.UniqueViolationError, match="one_booking_per_slot"):
            await waiting
    finally:
        await first.close()
        await second.close()
    rows = await conn.fetch("""SELECT generation FROM finance.contributions
                                WHERE nik = $1 AND period = '2026-06' AND status = 'booked'""",
                            worker.nik)
    assert [r["generation"] for r in rows] == [1]


async def test_a_month_held_and_cancelled_is_booked_again_when_the_budget_allows(
    conn: asyncpg.Connection, malang: Programme
) -> None:
    programme = await funded(conn, malang, budget_idr=3 * PREMIUM)
    worker = Worker([programme])
    first = await book.book_schedules(conn, worker.register(programme))
    assert (first.booked[programme.id], first.held[programme.id]) == (3, 9)
    stop = await book.book_schedules(conn, worker.deregister(programme, "2026-03"))
    assert stop.held_cancelled == 9  # never booked, nothing to reverse
    again = await book.book_schedules(conn, worker.register(programme, "2026-06", 6))
    assert again.held[programme.id] == 6  # no room: held, as generation 1
    assert await active(conn, worker.nik) == KEPT

    _, _, release = await raise_allocation(conn, programme=programme.id, amount_idr=6 * PREMIUM,
                                           reason="APBD-P", changed_by="test")
    assert (release.booked, release.duplicates) == (6, 0)
    assert await active(conn, worker.nik) == KEPT + AGAIN
    assert await booked_idr(conn, programme.id) == 9 * PREMIUM



async def test_bills_and_finance_views_see_one_payer_per_month(
    conn: asyncpg.Connection, malang: Programme
) -> None:
    programme = await funded(conn, malang)
    worker = Worker([programme])
    await book.book_schedules(conn, worker.register(programme)
                              + worker.deregister(programme, "2026-03"))
    await book.book_schedules(conn, worker.register(programme, "2026-06", 6))
    bill = await issue_bill(conn, programme, "2026-06", issued_by="test", today=IN_FISCAL_2025)
    assert bill is not None and (bill.lines, bill.amount_idr) == (1, PREMIUM)
    line = await conn.fetchval("SELECT contribution_id FROM ledger.bill_lines WHERE bill_id = $1",
                               bill.bill_id)
    assert line == contribution_id(programme.id, worker.nik, "2026-06", 1)
    monthly = {r["period"]: (r["workers"], r["amount_idr"], r["billed_idr"]) for r in
               await conn.fetch("SELECT * FROM finance.monthly_bill WHERE programme = $1",
                                programme.id)}
    assert monthly == {**{p: (1, PREMIUM, 0) for p in KEPT + AGAIN[1:]},
                       "2026-06": (1, PREMIUM, PREMIUM)}
    outstanding = await conn.fetchval(
        "SELECT sum(outstanding_idr) FROM finance.outstanding WHERE programme = $1",
        programme.id)
    assert outstanding == 9 * PREMIUM
    # the finance role reads the new column
    await conn.execute("SET ROLE iuran_finance")
    try:
        assert await conn.fetchval(
            "SELECT max(generation) FROM finance.contributions WHERE nik = $1", worker.nik) == 1
    finally:
        await conn.execute("RESET ROLE")


async def test_the_ledger_writer_role_books_a_month_again(
    ledger_url: str, conn: asyncpg.Connection, malang: Programme
) -> None:
    programme = await funded(conn, malang, budget_idr=12 * PREMIUM)
    worker = Worker([programme])
    writer = await asyncpg.connect(ledger_url)
    try:
        await writer.execute("SET ROLE iuran_ledger_writer")
        await book.prepare(writer)
        await book.book_schedules(writer, worker.register(programme)
                                  + worker.deregister(programme, "2026-03"))
        # 3 kept + 6 again = 9 of 12 months of budget; the 9 reversed freed their room
        result = await book.book_schedules(writer, worker.register(programme, "2026-06", 6))
        assert result.booked[programme.id] == 6
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await writer.execute("ALTER TABLE ledger.contributions "
                                 "DROP CONSTRAINT contributions_previous_slot_cancelled")
    finally:
        await writer.close()
    assert await active(conn, worker.nik) == KEPT + AGAIN


# --- through the running services --------------------------------------------------------

async def test_registered_again_through_the_services_is_booked_again(
    stack: ServiceProcesses, settings: Settings, db: asyncpg.Pool
) -> None:
    nik = unique_nik()
    events = [registration(nik=nik), deregistration(nik, "2026-03"),
              registration(nik=nik, coverage_start="2026-06", months=6)]
    await publish(settings, TOPIC_REGISTRATIONS, [as_message(e) for e in events])
    deadline = time.monotonic() + 90
    rows: list[asyncpg.Record] = []
    while time.monotonic() < deadline:
        rows = await db.fetch(
            """SELECT period, status, generation FROM finance.contributions
                WHERE nik = $1 ORDER BY period, generation""", nik)
        if len(rows) >= 18 and sum(r["status"] == "cancelled" for r in rows) >= 9:
            break
        await asyncio.sleep(0.3)
    assert [(r["period"], r["status"], r["generation"]) for r in rows] == sorted(
        [(p, "booked", 0) for p in KEPT]
        + [(p, "cancelled", 0) for p in YEAR[3:]]
        + [(p, "booked", 1) for p in AGAIN], key=lambda m: (m[0], m[2]))
