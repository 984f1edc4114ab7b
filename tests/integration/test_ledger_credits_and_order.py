"""Money paths between the ledger's features, on the real processes (broker, ledger service,
PostgreSQL): a month cancelled after it was billed is a credit at BPJS and frees no cash; a
cancellation that arrives before its months still cancels them; room freed by a cancellation
books the contributions that wait for it at once, in the order they arrived."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import asyncpg
import pytest

from schemas.events import (
    TOPIC_CONTRIBUTIONS,
    TOPIC_PAYMENTS,
    ContributionSchedule,
    PaymentConfirmed,
)
from services.domain.programme import Billing, Programme, load_programmes
from services.ledger import book
from services.ledger.bills import issue_bill
from services.ledger.budget import ensure_allocation
from services.runtime.settings import Settings
from services.runtime.stack import ServiceProcesses
from tests.support.faults import GROUPS
from tests.support.kafka import publish
from tests.support.ledger import IN_FISCAL_2025, programme_copy, schedule
from tests.support.settle import PAYMENTS_STAGE, handled
from tests.support.workers import unique_nik

pytestmark = pytest.mark.integration

PREMIUM = 16_800
MONTH = "2025-12"
LEDGER_STAGE = ((GROUPS["ledger"], TOPIC_CONTRIBUTIONS),)
YEAR = ["2025-12", "2026-01", "2026-02", "2026-03", "2026-04", "2026-05",
        "2026-06", "2026-07", "2026-08", "2026-09", "2026-10", "2026-11"]


@pytest.fixture
async def conn(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(database_url)
    await book.prepare(connection)
    try:
        yield connection
    finally:
        await connection.close()


async def monthly_programme(conn: asyncpg.Connection, budget_idr: int) -> Programme:
    malang = load_programmes(Settings().programmes_dir)["malang-2025"]
    programme = programme_copy(malang, budget_idr=budget_idr, billing=Billing())
    await ensure_allocation(conn, programme)
    return programme


async def through_the_ledger(settings: Settings, *schedules: ContributionSchedule) -> None:
    """Publish schedules to the contributions topic and wait until the ledger service
    committed past them (schedules of different workers may be on different partitions:
    their order is not kept)."""
    await publish(settings, TOPIC_CONTRIBUTIONS,
                  [(s.nik.encode(), s.model_dump_json().encode()) for s in schedules])
    await handled(settings, LEDGER_STAGE)


async def pay(settings: Settings, programme: Programme, amount_idr: int) -> None:
    payment = PaymentConfirmed(
        payment_id=uuid.uuid4(), programme=programme.id, period=MONTH, amount_idr=amount_idr,
        reference=f"BPJS-{uuid.uuid4().hex[:8]}", paid_at=datetime(2025, 12, 12, tzinfo=UTC))
    await publish(settings, TOPIC_PAYMENTS,
                  [(programme.id.encode(), payment.model_dump_json().encode())])
    await handled(settings, PAYMENTS_STAGE)


async def statuses(db: asyncpg.Pool, programme: str, nik: str) -> list[str]:
    rows = await db.fetch("SELECT status FROM finance.contributions WHERE programme = $1 "
                          "AND nik = $2 ORDER BY period, status", programme, nik)
    return [r["status"] for r in rows]


async def test_a_credit_at_bpjs_is_not_paid_again_in_cash(
    stack: ServiceProcesses, settings: Settings, conn: asyncpg.Connection, db: asyncpg.Pool,
) -> None:
    programme = await monthly_programme(conn, budget_idr=PREMIUM)  # room for one month
    first, second = unique_nik(), unique_nik()
    await through_the_ledger(settings, schedule(programme, first, [MONTH]))
    bill = await issue_bill(conn, programme, MONTH, issued_by="test", today=IN_FISCAL_2025)
    assert bill is not None and bill.amount_idr == PREMIUM
    await pay(settings, programme, bill.amount_idr)

    # The paid month is deregistered (a credit at BPJS); then another worker is registered
    # for the same month, and the first one again (a second generation of the month).
    await through_the_ledger(settings, schedule(programme, first, [MONTH], kind="cancelled"))
    await through_the_ledger(settings, schedule(programme, second, [MONTH]),
                             schedule(programme, first, [MONTH], generation=1, event="again"))
    again = await issue_bill(conn, programme, MONTH, issued_by="test", today=IN_FISCAL_2025)
    if again is not None:
        await pay(settings, programme, again.amount_idr)

    use = await db.fetchrow("SELECT * FROM finance.budget_utilisation WHERE programme = $1",
                            programme.id)
    received = await db.fetchval(
        "SELECT received_idr FROM finance.cash_reconciliation WHERE programme = $1",
        programme.id)
    assert received <= use["allocated_idr"], (
        f"Rp{received:,} paid out of an allocation of Rp{use['allocated_idr']:,}")
    assert (use["paid_idr"], use["credit_idr"], use["remaining_idr"]) == (PREMIUM, PREMIUM, 0)
    assert await statuses(db, programme.id, second) == ["held"]
    assert await statuses(db, programme.id, first) == ["cancelled", "held"]


async def test_a_cancellation_that_arrives_first_still_cancels_its_months(
    stack: ServiceProcesses, settings: Settings, conn: asyncpg.Connection, db: asyncpg.Pool,
) -> None:
    programme = await monthly_programme(conn, budget_idr=10**9)
    early, usual = unique_nik(), unique_nik()
    # One worker's deregistration reaches the ledger before the registration it stops (two
    # validators, a publisher of its own, a crash between commit and send); the other's after.
    early_stop, early_start = (schedule(programme, early, YEAR[3:], kind="cancelled"),
                               schedule(programme, early, YEAR))
    await through_the_ledger(settings, early_stop)
    await through_the_ledger(settings, early_start, schedule(programme, usual, YEAR))
    await through_the_ledger(settings, schedule(programme, usual, YEAR[3:], kind="cancelled"))

    # Whatever the order, the same months are booked and the same are cancelled.
    for nik in (early, usual):
        assert await statuses(db, programme.id, nik) == ["booked"] * 3 + ["cancelled"] * 9
    use = await db.fetchrow("SELECT * FROM finance.budget_utilisation WHERE programme = $1",
                            programme.id)
    assert use["booked_idr"] == 2 * 3 * PREMIUM
    # and each event says what became of its months
    months = await db.fetch(
        "SELECT event_id, what, period FROM finance.registration_months "
        "WHERE event_id = ANY($1::uuid[]) ORDER BY period",
        [early_stop.registration_event_id, early_start.registration_event_id])
    assert [r["period"] for r in months if r["event_id"] == early_stop.registration_event_id
            and r["what"] == "stopped"] == YEAR[3:]
    assert [(r["period"], r["what"]) for r in months
            if r["event_id"] == early_start.registration_event_id] == [
        *((p, "booked") for p in YEAR[:3]), *((p, "cancelled") for p in YEAR[3:])]


async def test_room_freed_by_a_cancellation_books_the_waiting_contributions_at_once(
    stack: ServiceProcesses, settings: Settings, conn: asyncpg.Connection, db: asyncpg.Pool,
) -> None:
    programme = await monthly_programme(conn, budget_idr=PREMIUM)  # room for one month
    first, second, third = unique_nik(), unique_nik(), unique_nik()
    await through_the_ledger(settings, schedule(programme, first, [MONTH]))
    await through_the_ledger(settings, schedule(programme, second, [MONTH]))
    assert await statuses(db, programme.id, second) == ["held"]

    # The first worker's unbilled month is cancelled: its room goes to the second worker,
    # who waited longest, in the same transaction (no restart, no budget raise); a third
    # worker registered after the cancellation waits behind.
    await through_the_ledger(settings, schedule(programme, first, [MONTH], kind="cancelled"),
                             schedule(programme, third, [MONTH]))
    assert await statuses(db, programme.id, second) == ["booked"]
    assert await statuses(db, programme.id, third) == ["held"]
    use = await db.fetchrow("SELECT * FROM finance.budget_utilisation WHERE programme = $1",
                            programme.id)
    assert (use["booked_idr"], use["held_contributions"]) == (PREMIUM, 1)
