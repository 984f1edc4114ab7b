"""The end of a programme year on real PostgreSQL: finance.cover_expiry (whose cover ends
when, counted in the programme's time zone, and which programme continues it), the gauge of
cover ending without a renewal, and the waiting list that a renewal's priority order decides
when the budget is raised."""

from __future__ import annotations

from datetime import UTC, datetime

import asyncpg
import pytest
from prometheus_client import REGISTRY

from services.domain.periods import period_from_index, period_range
from services.domain.programme import Programme
from services.ledger import book
from services.ledger.budget import ensure_allocation, raise_allocation
from services.ledger.cover import record_time_zone
from services.ledger.report import refresh_gauges
from tests.support.ledger import NikSource, programme_copy, schedule

pytestmark = pytest.mark.integration

PREMIUM = 16_800


def this_month(programme: Programme) -> int:
    today = programme.today()
    return today.year * 12 + today.month - 1


def months(first: int, count: int) -> list[str]:
    return list(period_range(period_from_index(first), count))


async def allocated(conn: asyncpg.Connection, base: Programme, budget: int) -> Programme:
    programme = programme_copy(base, budget_idr=budget)
    await ensure_allocation(conn, programme)
    await record_time_zone(conn, programme)
    return programme


async def test_cover_expiry_counts_the_months_left_and_names_the_programme_that_continues(
    conn: asyncpg.Connection, malang: Programme, niks: NikSource
) -> None:
    old = await allocated(conn, malang, 10**12)
    new = await allocated(conn, malang, 10**12)
    now = this_month(old)
    ending, renewed, ended = niks.take(3)
    await book.book_schedules(conn, [
        schedule(old, ending, months(now - 10, 12)),       # ends next month
        schedule(old, renewed, months(now - 11, 12)),      # ends this month, renewed after
        schedule(new, renewed, months(now + 1, 12), event=f"{renewed}:new"),
        schedule(old, ended, months(now - 13, 12)),        # ended two months ago
    ])
    rows = {r["nik"]: r for r in await conn.fetch(
        "SELECT * FROM finance.cover_expiry WHERE programme = $1", old.id)}
    assert rows[ending]["covered_through"] == period_from_index(now + 1)
    assert rows[ending]["months_left"] == 2
    assert rows[renewed]["months_left"] == 1
    assert (rows[renewed]["renewed_to"], rows[renewed]["renewed_from"]) == (
        new.id, period_from_index(now + 1))
    assert rows[ended]["months_left"] == 0 and rows[ended]["renewed_to"] is None
    assert rows[ending]["today"] == old.today()
    # nothing was paid: BPJS has no paid month to count three unpaid months from
    assert {r["paid_through"] for r in rows.values()} == {None}
    assert {r["inactive_from"] for r in rows.values()} == {None}
    assert (rows[ending]["opd_code"], rows[ending]["category"]) == ("DISNAKER", "ojek_online")

    await refresh_gauges(conn)

    def ending_within(within: int) -> float | None:
        return REGISTRY.get_sample_value(
            "iuran_cover_ending_workers", {"programme": old.id, "within_months": str(within)})

    # the renewed worker is not counted; the one whose cover has ended neither
    assert (ending_within(1), ending_within(2), ending_within(3)) == (0, 1, 1)


async def test_months_left_are_counted_in_the_programmes_time_zone(
    conn: asyncpg.Connection, malang: Programme, niks: NikSource
) -> None:
    # UTC+14 and UTC-11: at most one of them is in another day than UTC, never both the same
    east = await allocated(conn, malang.model_copy(update={"timezone": "Pacific/Kiritimati"}),
                           10**9)
    west = await allocated(conn, malang.model_copy(update={"timezone": "Pacific/Pago_Pago"}),
                           10**9)
    for programme, nik in zip((east, west), niks.take(2), strict=True):
        await book.book_schedules(conn, [schedule(programme, nik, ["2030-01"],
                                                  event=f"{nik}:{programme.id}")])
        today = await conn.fetchval(
            "SELECT today FROM finance.cover_expiry WHERE programme = $1", programme.id)
        assert today == programme.today(datetime.now(UTC))


async def test_renewal_ranks_decide_who_is_booked_when_the_budget_is_raised(
    conn: asyncpg.Connection, malang: Programme, niks: NikSource
) -> None:
    programme = await allocated(conn, malang, PREMIUM * 3)
    workers = niks.take(5)
    newcomer = workers[0]
    # three months of room: the first worker to arrive takes it, the others wait
    await book.book_schedules(conn, [schedule(programme, n, ["2026-12", "2027-01", "2027-02"])
                                     for n in workers])
    ranked = [workers[4], workers[2], workers[1]]  # a renewal's order; workers[3] unranked
    await conn.executemany(
        """INSERT INTO ledger.renewal_ranks (programme, nik, rank, renewal_of, priority,
                                             requested_by)
           VALUES ($1, $2, $3, 'p1', 'test', 'test')""",
        [(programme.id, n, place) for place, n in enumerate(ranked, 1)])
    waiting = await conn.fetch(
        "SELECT place, nik, renewal_rank, months, reason FROM finance.waiting_list "
        "WHERE programme = $1 ORDER BY place", programme.id)
    assert [r["nik"] for r in waiting] == [*ranked, workers[3]]
    assert {(r["months"], r["reason"]) for r in waiting} == {(3, "budget_exceeded")}
    assert newcomer not in {r["nik"] for r in waiting}

    await raise_allocation(conn, programme=programme.id, amount_idr=PREMIUM * 6,
                           reason="APBD-P", changed_by="test")
    booked = await conn.fetch(
        "SELECT DISTINCT nik FROM finance.contributions WHERE programme = $1 "
        "AND status = 'booked'", programme.id)
    assert {r["nik"] for r in booked} == {newcomer, workers[4], workers[2]}
    still = await conn.fetch("SELECT place, nik FROM finance.waiting_list WHERE programme = $1 "
                             "ORDER BY place", programme.id)
    assert [(r["place"], r["nik"]) for r in still] == [(1, workers[1]), (2, workers[3])]
