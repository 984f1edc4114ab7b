"""Business dates in each programme's time zone on real PostgreSQL: finance.today of a
programme (the zone its file declares, as the ledger recorded it), and what finance.bills,
finance.outstanding and finance.arrears find past due by that day."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import asyncpg
import pytest

from services.domain.programme import Programme
from services.ledger import book
from services.ledger.bills import issue_prepaid_bill, record_billing
from services.ledger.budget import ensure_allocation
from services.ledger.cover import record_time_zone
from tests.support.ledger import NikSource, programme_copy, schedule

pytestmark = pytest.mark.integration

# 00:30 WIT on 16 December 2025 in Jayapura is 22:30 WIB on 15 December in Jakarta.
JAYAPURA_AFTER_MIDNIGHT = datetime(2025, 12, 15, 15, 30, tzinfo=UTC)

# Jayapura (WIT, UTC+9) is a day ahead of Jakarta two hours a day. Kiritimati (UTC+14) and
# Pago Pago (UTC-11) are between them in another day than Jakarta at every hour, so a
# programme day judged in WIB shows below whenever the test runs.
ZONES = ("Asia/Jayapura", "Pacific/Kiritimati", "Pacific/Pago_Pago")


async def in_zone(conn: asyncpg.Connection, malang: Programme, zone: str,
                  fiscal_year: int | None = None) -> Programme:
    """A copy of the (prepaid) Malang programme in another time zone, as the ledger service
    records it at start."""
    update: dict[str, object] = {"timezone": zone}
    if fiscal_year is not None:
        update["fiscal_year"] = fiscal_year
    programme = programme_copy(malang.model_copy(update=update), budget_idr=10**9)
    await ensure_allocation(conn, programme)
    await record_billing(conn, programme)
    await record_time_zone(conn, programme)
    return programme


async def test_a_programmes_day_is_the_day_in_its_time_zone(
    conn: asyncpg.Connection, malang: Programme
) -> None:
    jayapura = await in_zone(conn, malang, "Asia/Jayapura")
    moment = JAYAPURA_AFTER_MIDNIGHT

    async def today(programme: Programme) -> date:
        return await conn.fetchval("SELECT finance.today($1, $2)", programme.id, moment)

    assert await today(jayapura) == jayapura.today(moment) == date(2025, 12, 16)
    # the finance roles, which cannot read the ledger's tables, get the same day
    for role in ("iuran_finance", "iuran_auditor"):
        async with conn.transaction():
            await conn.execute(f"SET LOCAL ROLE {role}")
            assert await today(jayapura) == date(2025, 12, 16)
    # a programme whose zone the ledger has not recorded keeps the default, WIB
    unrecorded = programme_copy(malang, budget_idr=10**9)
    assert await today(unrecorded) == unrecorded.today(moment) == date(2025, 12, 15)
    # the zone a programme file changes to is the one in force (WITA: 23:30 on the 15th)
    makassar = jayapura.model_copy(update={"timezone": "Asia/Makassar"})
    await record_time_zone(conn, makassar)
    assert await today(makassar) == makassar.today(moment) == date(2025, 12, 15)
    # without a moment: now, in the programme's zone
    assert await conn.fetchval(
        "SELECT finance.today($1) = (now() AT TIME ZONE 'Asia/Makassar')::date",
        makassar.id)


async def test_a_bill_due_on_the_programmes_day_is_open_and_the_day_before_past_due(
    conn: asyncpg.Connection, malang: Programme, niks: NikSource
) -> None:
    seen: dict[tuple[str, int], tuple[str, bool, int]] = {}
    expected: dict[tuple[str, int], tuple[str, bool, int]] = {}
    # one transaction: every view below judges by its start, the moment read here
    async with conn.transaction():
        now: datetime = await conn.fetchval("SELECT now()")
        for zone in ZONES:
            for days_before in (0, 1):
                due = malang.model_copy(update={"timezone": zone}).today(now) \
                    - timedelta(days=days_before)
                programme = await in_zone(conn, malang, zone, fiscal_year=due.year)
                nik = niks.take(1)[0]
                await book.book_schedules(conn, [schedule(programme, nik, ["2030-01"])])
                bill = await issue_prepaid_bill(conn, programme, due, issued_by="test",
                                                today=due)
                assert bill is not None and bill.due_date == due
                status = await conn.fetchval(
                    "SELECT status FROM finance.bills WHERE bill_id = $1", bill.bill_id)
                outstanding = await conn.fetchval(
                    "SELECT past_due FROM finance.outstanding WHERE programme = $1",
                    programme.id)
                arrears = await conn.fetchval(
                    "SELECT count(*) FROM finance.arrears WHERE programme = $1", programme.id)
                seen[zone, days_before] = (status, outstanding, arrears)
                expected[zone, days_before] = (
                    ("open", False, 0) if days_before == 0 else ("past_due", True, 1))
    assert seen == expected
