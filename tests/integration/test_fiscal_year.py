"""A programme's registration window and fiscal year, on the running stack and a real
ledger: a registration dated after the fiscal year is rejected (programme_closed); a bill
is dated today or earlier, inside the programme's fiscal year while that year is open."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime

import asyncpg
import httpx
import pytest

from schemas.events import TOPIC_REGISTRATIONS
from services.cli.main import main
from services.domain.periods import period_range
from services.domain.programme import Programme
from services.ledger import book
from services.ledger.bills import BillError, issue_bill, issue_prepaid_bill
from services.ledger.budget import ensure_allocation
from services.runtime.settings import Settings, get_settings
from services.runtime.stack import ServiceProcesses
from tests.support.gateway import DISHUB, base_url
from tests.support.kafka import publish
from tests.support.ledger import NikSource, programme_copy, schedule
from tests.support.workers import WIB, as_message, registration

pytestmark = pytest.mark.integration

PREMIUM = 16_800


@pytest.fixture
async def client(stack: ServiceProcesses, settings: Settings
                 ) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=base_url(settings), timeout=60) as http:
        yield http


async def final(client: httpx.AsyncClient, event_id: uuid.UUID) -> dict[str, object]:
    for _ in range(180):
        found = await client.get(f"/v1/events/{event_id}", headers=DISHUB)
        if found.status_code == 200 and found.json()["final"]:
            body: dict[str, object] = found.json()
            return body
        await asyncio.sleep(0.5)
    raise AssertionError(f"event {event_id} never decided")


async def test_a_registration_after_the_fiscal_year_is_rejected(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    late = registration(opd_code="DISHUB", coverage_start="2026-06").model_copy(
        update={"occurred_at": datetime(2026, 5, 20, 9, 0, tzinfo=WIB)})
    # the last evening of the fiscal year in Malang is 31 Dec 2025 12:00 UTC onwards, still 2025
    in_time = registration(opd_code="DISHUB", coverage_start="2026-01").model_copy(
        update={"occurred_at": datetime(2025, 12, 31, 16, 30, tzinfo=UTC)})
    await publish(settings, TOPIC_REGISTRATIONS, [as_message(late), as_message(in_time)])

    refused = await final(client, late.event_id)
    assert refused["status"] == "rejected", refused
    assert [e["code"] for e in refused["errors"]] == ["programme_closed"]  # type: ignore[union-attr, index]
    assert "fiscal year 2025" in refused["errors"][0]["message"]  # type: ignore[index]
    assert (await final(client, in_time.event_id))["status"] == "booked"


async def booked(conn: asyncpg.Connection, programme: Programme, niks: NikSource) -> None:
    await ensure_allocation(conn, programme)
    await book.book_schedules(conn, [schedule(programme, nik, list(period_range("2025-12", 12)))
                                     for nik in niks.take(2)])


async def test_a_bill_is_not_back_dated_into_a_closed_year_nor_dated_ahead(
    conn: asyncpg.Connection, malang: Programme, niks: NikSource
) -> None:
    prepaid = programme_copy(malang, budget_idr=10**9)
    await booked(conn, prepaid, niks)
    # today, 7 Jan 2026: the fiscal year 2025 is closed, a bill dated in it is refused
    with pytest.raises(BillError, match="fiscal year 2025 .* is closed"):
        await issue_prepaid_bill(conn, prepaid, date(2025, 11, 25), issued_by="test",
                                 today=date(2026, 1, 7))
    with pytest.raises(BillError, match="dated today .* or earlier"):
        await issue_prepaid_bill(conn, prepaid, date(2025, 12, 2), issued_by="test",
                                 today=date(2025, 12, 1))
    bill = await issue_prepaid_bill(conn, prepaid, date(2025, 11, 25), issued_by="test",
                                    today=date(2025, 12, 1))
    assert bill is not None and bill.lines == 24

    monthly = programme_copy(malang, budget_idr=10**9, billing=malang.billing.__class__())
    await booked(conn, monthly, niks)
    with pytest.raises(BillError, match="fiscal year 2025 .* is closed"):
        await issue_bill(conn, monthly, "2025-12", issued_by="test", today=date(2026, 1, 7))
    issued = await issue_bill(conn, monthly, "2025-12", issued_by="test",
                              today=date(2025, 12, 1))
    assert issued is not None and issued.amount_idr == 2 * PREMIUM


def test_the_cli_refuses_a_bill_of_a_closed_year_in_one_line(
    ledger_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("IURAN_DATABASE_URL", ledger_url)
    monkeypatch.setenv("IURAN_BUSINESS_DATE", "2026-01-07")
    get_settings.cache_clear()
    try:
        code = main(["bill", "issue", "--programme", "malang-2025", "--on", "2025-11-25",
                     "--by", "BPKAD"])
    finally:
        get_settings.cache_clear()
    out, err = capsys.readouterr()
    assert code != 0 and out == ""
    assert err.count("\n") == 1 and "fiscal year 2025" in err and "closed" in err
