"""The coverage totals folded from the ledger's outbox (coverage.*) against SQL over
finance.contributions: booked, held for budget, cancelled (booked or while held), refused
duplicates, held ones booked when the allocation rises, bills paid — every figure equal after
every step once the outbox rows are folded (as the projector folds them from
iuran.ledger.v1)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import asyncpg

from schemas.events import PaymentConfirmed
from services.domain.coverage import snapshot
from services.domain.programme import Billing, Programme
from services.ledger import book
from services.ledger.bills import issue_bill
from services.ledger.budget import ensure_allocation, raise_allocation
from services.ledger.coverage import changes, read_coverage
from services.ledger.payments import apply_payment
from tests.support.coverage import as_figures, fold_outbox, ledger_figures
from tests.support.ledger import IN_FISCAL_2025, NikSource, programme_copy, schedule

PREMIUM = 16_800
YEAR = ["2025-12", "2026-01", "2026-02", "2026-03", "2026-04", "2026-05",
        "2026-06", "2026-07", "2026-08", "2026-09", "2026-10", "2026-11"]


async def assert_equal(conn: asyncpg.Connection, programme: Programme) -> dict[str, object]:
    await fold_outbox(conn)
    ledger = await read_coverage(conn)
    seen = snapshot(programme, ledger, datetime.now(UTC)).model_dump(mode="json")
    expected = await ledger_figures(conn, programme.id, programme.coverage.headline_period)
    assert as_figures(seen) == expected
    return seen


async def test_every_outcome_of_the_ledger_moves_the_summary_as_sql_sees_it(
    conn: asyncpg.Connection, malang: Programme, niks: NikSource
) -> None:
    city = programme_copy(malang, budget_idr=2 * 12 * PREMIUM)  # room for two workers
    province = programme_copy(malang, budget_idr=10**12)
    for programme in (city, province):
        await ensure_allocation(conn, programme)
    workers = niks.take(5)
    before = await changes(conn)
    await book.book_schedules(conn, [
        schedule(city, nik, YEAR, opd_code=opd, kecamatan=kecamatan)
        for nik, opd, kecamatan in zip(workers, ["DISNAKER", "DISHUB", "DISHUB", "DINSOS",
                                                 "DISNAKER"],
                                       ["Klojen", "Sukun", "Klojen", "Blimbing", "Sukun"],
                                       strict=True)])
    assert await changes(conn) == before  # not folded yet: the booking does not sum it
    await fold_outbox(conn)
    assert await changes(conn) > before
    seen = await assert_equal(conn, city)
    assert (seen["active_workers"], seen["awaiting_budget_workers"]) == (2, 3)
    assert seen["awaiting_budget_idr"] == 3 * 12 * PREMIUM

    # the province pays a worker the city already pays: refused months, nothing counted
    # twice; and a new worker from 2026-01 that the city does not pay
    other = niks.take(1)[0]
    await book.book_schedules(conn, [schedule(province, workers[0], YEAR[1:]),
                                     schedule(province, other, YEAR[1:])])
    seen = await assert_equal(conn, city)
    assert seen["covered_in_headline_period"] >= 2
    province_seen = await assert_equal(conn, province)
    assert province_seen["active_workers"] == 1

    # a booked worker deregistered from 2026-06, a held one deregistered entirely
    await book.book_schedules(conn, [
        schedule(city, workers[1], YEAR[6:], kind="cancelled"),
        schedule(city, workers[4], YEAR, kind="cancelled")])
    # (the six months freed go at once to the oldest waiting worker's first six months)
    seen = await assert_equal(conn, city)
    assert seen["contributions_booked"] == 12 + 6 + 6
    assert seen["awaiting_budget_workers"] == 2

    # the allocation rises by twelve months: the held months are booked oldest first, so one
    # worker is covered in part and awaits the rest
    marker = await changes(conn)
    await raise_allocation(conn, programme=city.id, amount_idr=12 * PREMIUM,
                           reason="one more worker", changed_by="test")
    await fold_outbox(conn)
    assert await changes(conn) > marker
    seen = await assert_equal(conn, city)
    assert seen["active_workers"] == 4
    assert (seen["awaiting_budget_workers"], seen["awaiting_budget_contributions"]) == (1, 6)

    # nothing changed: the marker stands still
    marker = await changes(conn)
    await book.book_schedules(conn, [schedule(city, workers[2], YEAR)])  # a replay
    assert await fold_outbox(conn) == []
    assert await changes(conn) == marker


async def test_what_was_paid_to_bpjs_is_in_the_snapshot_as_the_ledger_holds_it(
    conn: asyncpg.Connection, malang: Programme, niks: NikSource
) -> None:
    """paid_idr of the snapshot is the programme's settled bills, as
    finance.budget_utilisation sums them; a settlement writes its own outbox row and moves
    the change marker, so the projector publishes it without waiting for a booking."""
    programme = programme_copy(malang, budget_idr=10**12, billing=Billing())
    await ensure_allocation(conn, programme)
    workers = niks.take(3)
    await book.book_schedules(conn, [schedule(programme, nik, YEAR) for nik in workers])
    bill = await issue_bill(conn, programme, "2025-12", issued_by="test", today=IN_FISCAL_2025)
    assert bill is not None
    # a billed month deregistered before the payment: the frozen bill is paid in full
    await book.book_schedules(conn, [schedule(programme, workers[2], YEAR, kind="cancelled")])
    seen = await assert_equal(conn, programme)
    assert seen["paid_idr"] == 0

    marker = await changes(conn)
    outcome = await apply_payment(conn, PaymentConfirmed(
        payment_id=uuid.uuid4(), programme=programme.id, period="2025-12",
        amount_idr=bill.amount_idr, reference="BPJS-PAID-1",
        paid_at=datetime(2025, 12, 12, 9, 30, tzinfo=UTC)))
    assert outcome.outcome == "settled"
    assert [e.bills_settled[0].bill_id for e in await fold_outbox(conn)] == [bill.bill_id]
    assert await changes(conn) > marker
    seen = await assert_equal(conn, programme)
    paid = await conn.fetchval(
        "SELECT sum(paid_idr)::bigint FROM finance.budget_utilisation WHERE programme = $1",
        programme.id)
    assert seen["paid_idr"] == paid == bill.amount_idr == 3 * PREMIUM
