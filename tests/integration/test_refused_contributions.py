"""Nothing is dropped silently: every contribution of a valid schedule ends booked, held, a
duplicate attempt or refused with why (ledger.refused_contributions, finance view), even two
different generation-0 rows for one worker-month in one batch."""

from __future__ import annotations

import asyncpg
import pytest

from schemas.events import Components
from services.domain.programme import Programme
from services.ledger import book
from services.ledger.budget import ensure_allocation, raise_allocation
from tests.support.ledger import NikSource, programme_copy, schedule

PREMIUM = 16_800

pytestmark = pytest.mark.integration

MONTH = ["2026-04"]


async def _where(conn: asyncpg.Connection, nik: str) -> dict[str, str]:
    """Where each contribution of the worker-month ended, by programme."""
    rows = await conn.fetch(
        """SELECT programme, status AS outcome FROM finance.contributions
            WHERE nik = $1 AND period = $2
           UNION ALL
           SELECT programme, 'duplicate' FROM ledger.duplicate_attempts
            WHERE nik = $1 AND period = $2
           UNION ALL
           SELECT programme, 'refused:' || reason FROM finance.refused_contributions
            WHERE nik = $1 AND period = $2""", nik, MONTH[0])
    return {r["programme"]: r["outcome"] for r in rows}


async def test_two_generation_0_rows_of_a_month_in_one_batch_both_end_visible(
    conn: asyncpg.Connection, malang: Programme, niks: NikSource
) -> None:
    funded_nik, unfunded_nik = niks.take(2)
    first, second = (programme_copy(malang, budget_idr=10**12) for _ in range(2))
    for programme in (first, second):
        await ensure_allocation(conn, programme)
    result = await book.book_schedules(
        conn, [schedule(first, funded_nik, MONTH), schedule(second, funded_nik, MONTH)])
    assert await _where(conn, funded_nik) == {first.id: "booked", second.id: "duplicate"}
    assert sum(result.unbookable.values()) == 0

    # Neither programme has room: both rows wait, in order; the first to be released books
    # the month and the other then becomes a duplicate attempt.
    held, other = programme_copy(malang, budget_idr=0), programme_copy(malang, budget_idr=0)
    for programme in (held, other):
        await ensure_allocation(conn, programme)
    batch = [schedule(held, unfunded_nik, MONTH), schedule(other, unfunded_nik, MONTH)]
    result = await book.book_schedules(conn, batch)
    assert await _where(conn, unfunded_nik) == {held.id: "held", other.id: "held"}
    assert sum(result.unbookable.values()) == 0
    again = await book.book_schedules(conn, batch)  # a replay records nothing twice
    assert sum(again.held.values()) == 0
    await raise_allocation(conn, programme=held.id, amount_idr=PREMIUM, reason="room",
                           changed_by="test")
    await raise_allocation(conn, programme=other.id, amount_idr=PREMIUM, reason="room",
                           changed_by="test")
    assert await _where(conn, unfunded_nik) == {held.id: "booked", other.id: "duplicate"}


async def test_a_month_paid_again_before_its_earlier_generation_arrived_is_booked_once(
    conn: asyncpg.Connection, malang: Programme, niks: NikSource
) -> None:
    """Generation 1 of a month says generation 0 was registered and cancelled; when both
    reach the ledger after it (another validator, a publisher of its own), generation 1
    stays the month's one payer."""
    nik = niks.take()[0]
    programme = programme_copy(malang, budget_idr=10**12)
    await ensure_allocation(conn, programme)
    result = await book.book_schedules(conn, [schedule(programme, nik, MONTH, generation=1)])
    assert result.booked == {programme.id: 1}
    late = await book.book_schedules(conn, [
        schedule(programme, nik, MONTH, event="late"),
        schedule(programme, nik, MONTH, kind="cancelled", event="late-stop")])
    assert sum(late.booked.values()) == 0 and sum(late.unbookable.values()) == 0
    rows = await conn.fetch("SELECT generation FROM finance.contributions "
                            "WHERE nik = $1 AND status = 'booked'", nik)
    assert [r["generation"] for r in rows] == [1]


async def test_a_month_enrolled_again_under_another_schedule_is_refused_not_swallowed(
    conn: asyncpg.Connection, malang: Programme, niks: NikSource
) -> None:
    """The same worker, programme and month from a second enrolment (e.g. another OPD after
    the validator lost its state) has the same contribution id as the booked one; unlike a
    replay it carries another schedule id: recorded as refused, the booked month kept."""
    nik = niks.take()[0]
    programme = programme_copy(malang, budget_idr=10**12)
    await ensure_allocation(conn, programme)
    first = schedule(programme, nik, MONTH, opd_code="DISNAKER", event="first")
    second = schedule(programme, nik, MONTH, opd_code="DISHUB", event="second")
    await book.book_schedules(conn, [first])
    replay = await book.book_schedules(conn, [first])
    assert sum(replay.unbookable.values()) == 0
    result = await book.book_schedules(conn, [second])
    assert result.refused_reasons == {"booked_by_another_schedule": 1}
    row = await conn.fetchrow(
        "SELECT opd_code, reason FROM finance.refused_contributions WHERE nik = $1", nik)
    assert (row["opd_code"], row["reason"]) == ("DISHUB", "booked_by_another_schedule")
    assert await conn.fetchval(
        "SELECT opd_code FROM ledger.contributions WHERE nik = $1", nik) == "DISNAKER"


async def test_a_contribution_not_of_the_programme_premium_is_refused_and_blocks_nobody(
    conn: asyncpg.Connection, malang: Programme, niks: NikSource
) -> None:
    # Twelve months of 2**62 each: within BIGINT one by one, far beyond any budget. Held,
    # it would block every later contribution of the programme behind it in the queue.
    wrong_nik, later_nik = niks.take(2)
    programme = programme_copy(malang, budget_idr=10**9)
    await ensure_allocation(conn, programme)
    periods = [f"2026-{m:02d}" for m in range(1, 13)]
    due = schedule(programme, wrong_nik, periods)
    components = Components(jkk=2**62 - 6_800, jkm=6_800)
    wrong = due.model_copy(update={"contributions": [
        c.model_copy(update={"amount_idr": 2**62, "components": components})
        for c in due.contributions]})
    result = await book.book_schedules(conn, [wrong])
    assert result.refused_reasons == {"amount_not_programme_premium": 12}
    assert sum(result.held.values()) == sum(result.booked.values()) == 0
    assert await conn.fetchval(
        """SELECT count(*) FROM finance.refused_contributions
            WHERE nik = $1 AND reason = 'amount_not_programme_premium'""", wrong_nik) == 12

    later = await book.book_schedules(conn, [schedule(programme, later_nik, periods)])
    assert later.booked == {programme.id: 12}
    again = await book.book_schedules(conn, [wrong])  # a replay records nothing twice
    assert sum(again.unbookable.values()) == 0
