"""Prepaid billing on real PostgreSQL: one bill covers every month of each enrolled worker
(cohorts starting in different months), one payment confirmation settles it, later
enrolments get a supplementary bill, a deregistration of a prepaid month becomes a credit,
and the arrears/outstanding views never put a prepaid worker at lapse risk."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime

import asyncpg
import pytest
from prometheus_client import REGISTRY

from schemas.events import PaymentConfirmed
from services.domain.periods import period_range
from services.domain.programme import Programme
from services.ledger import book
from services.ledger.bills import BillError, issue_bill, issue_prepaid_bill, record_billing
from services.ledger.budget import ensure_allocation
from services.ledger.payments import apply_payment, refund_credit
from services.ledger.report import refresh_gauges
from tests.support.ledger import IN_FISCAL_2025, NikSource, programme_copy, schedule

pytestmark = pytest.mark.integration

PREMIUM = 16_800
PAID_ON = date(2025, 11, 25)
COHORTS = {"2025-09": 2, "2025-10": 1, "2025-12": 3}  # coverage start -> workers


@pytest.fixture
async def prepaid(conn: asyncpg.Connection, malang: Programme) -> Programme:
    programme = programme_copy(malang, budget_idr=10**12)
    assert (programme.billing.mode, programme.billing.months) == ("prepaid", 12)
    await ensure_allocation(conn, programme)
    await record_billing(conn, programme)
    return programme


def payment(programme: Programme, amount: int, period: str = "2025-11",
            reference: str | None = None) -> PaymentConfirmed:
    return PaymentConfirmed(
        payment_id=uuid.uuid4(), programme=programme.id, period=period, amount_idr=amount,
        reference=reference or f"SP2D-{uuid.uuid4().hex[:8]}",
        paid_at=datetime(2025, 11, 25, 3, 0, tzinfo=UTC))


def carried_over(programme: Programme) -> float | None:
    """iuran_credits_carried_over_idr of a programme, as this process exports it."""
    return REGISTRY.get_sample_value("iuran_credits_carried_over_idr",
                                     {"programme": programme.id})


async def enrol(conn: asyncpg.Connection, programme: Programme, niks: NikSource,
                cohorts: dict[str, int]) -> list[str]:
    enrolled = []
    for start, count in cohorts.items():
        for nik in niks.take(count):
            await book.book_schedules(
                conn, [schedule(programme, nik, list(period_range(start, 12)))])
            enrolled.append(nik)
    return enrolled


async def test_one_payment_settles_the_prepaid_year_of_every_cohort(
    conn: asyncpg.Connection, prepaid: Programme, niks: NikSource
) -> None:
    workers = await enrol(conn, prepaid, niks, COHORTS)
    # before the prepaid bill the months wait for it: outstanding, never past due or lapsing
    assert not await conn.fetchval(
        "SELECT bool_or(past_due) FROM finance.outstanding WHERE programme = $1", prepaid.id)
    assert await conn.fetchval("SELECT count(*) FROM finance.arrears WHERE programme = $1",
                               prepaid.id) == 0

    bill = await issue_prepaid_bill(conn, prepaid, PAID_ON, issued_by="test", today=IN_FISCAL_2025)
    assert bill is not None
    assert (bill.billing, bill.period, bill.sequence, bill.due_date, bill.fiscal_year) == (
        "prepaid", "2025-11", 1, PAID_ON, 2025)
    assert (bill.workers, bill.lines, bill.amount_idr) == (6, 72, 72 * PREMIUM)
    row = await conn.fetchrow(
        "SELECT workers, lines, billing, fiscal_year, first_period, last_period, status "
        "FROM finance.bills WHERE bill_id = $1", bill.bill_id)
    assert tuple(row) == (6, 72, "prepaid", 2025, "2025-09", "2026-11", "past_due")
    assert await issue_prepaid_bill(conn, prepaid, PAID_ON, issued_by="test",
                                    today=IN_FISCAL_2025) is None

    # issued and not paid: the bill is late, the months unpaid, but nobody is at lapse risk
    arrears = await conn.fetch(
        "SELECT unpaid_months, lapse_risk, prepaid FROM finance.arrears WHERE programme = $1",
        prepaid.id)
    assert sorted(tuple(r) for r in arrears) == [(12, False, True)] * 6

    outcome = await apply_payment(conn, payment(prepaid, 72 * PREMIUM))
    assert (outcome.outcome, outcome.bills) == ("settled", (bill.bill_id,))
    statuses = await conn.fetch(
        "SELECT status, count(*) FROM finance.contributions WHERE nik = ANY($1::text[]) "
        "GROUP BY status", workers)
    assert [tuple(r) for r in statuses] == [("paid", 72)]
    assert await conn.fetchval("SELECT count(*) FROM finance.arrears WHERE programme = $1",
                               prepaid.id) == 0
    assert await conn.fetchval("SELECT count(*) FROM finance.outstanding WHERE programme = $1",
                               prepaid.id) == 0
    budget = await conn.fetchrow(
        "SELECT fiscal_year, booked_idr, paid_idr FROM finance.budget_utilisation "
        "WHERE programme = $1", prepaid.id)
    assert tuple(budget) == (2025, 72 * PREMIUM, 72 * PREMIUM)


async def test_a_later_enrolment_gets_a_supplementary_prepaid_bill(
    conn: asyncpg.Connection, prepaid: Programme, niks: NikSource
) -> None:
    await enrol(conn, prepaid, niks, {"2025-12": 2})
    first = await issue_prepaid_bill(conn, prepaid, PAID_ON, issued_by="test", today=IN_FISCAL_2025)
    assert first is not None
    assert (await apply_payment(conn, payment(prepaid, first.amount_idr))).outcome == "settled"
    late = await enrol(conn, prepaid, niks, {"2025-12": 1})
    second = await issue_prepaid_bill(conn, prepaid, date(2025, 12, 10), issued_by="test",
                                      today=IN_FISCAL_2025)
    assert second is not None
    assert (second.sequence, second.period, second.workers, second.amount_idr) == (
        2, "2025-12", 1, 12 * PREMIUM)
    on_second = await conn.fetchval(
        "SELECT array_agg(DISTINCT c.nik) FROM ledger.bill_lines l "
        "JOIN ledger.contributions c USING (contribution_id) WHERE l.bill_id = $1",
        second.bill_id)
    assert on_second == late
    outcome = await apply_payment(conn, payment(prepaid, 12 * PREMIUM, period="2025-12"))
    assert (outcome.outcome, outcome.bills) == ("settled", (second.bill_id,))


async def test_a_deregistered_prepaid_month_becomes_a_credit_never_a_loss(
    conn: asyncpg.Connection, prepaid: Programme, niks: NikSource
) -> None:
    (worker,) = await enrol(conn, prepaid, niks, {"2025-12": 1})
    bill = await issue_prepaid_bill(conn, prepaid, PAID_ON, issued_by="test", today=IN_FISCAL_2025)
    assert bill is not None
    assert (await apply_payment(conn, payment(prepaid, bill.amount_idr))).outcome == "settled"
    budget_before = await conn.fetchval(
        "SELECT booked_idr FROM ledger.budget_allocations WHERE programme = $1", prepaid.id)

    # deregistered from 2026-09: the three paid months left become a credit at BPJS
    left = list(period_range("2026-09", 3))
    result = await book.book_schedules(
        conn, [schedule(prepaid, worker, left, kind="cancelled")])
    assert (result.reversed[prepaid.id], result.credited[prepaid.id]) == (3, 3)
    credits = await conn.fetch(
        "SELECT contribution_id, period, amount_idr, status, bill_id FROM finance.credits "
        "WHERE programme = $1 ORDER BY period", prepaid.id)
    assert [(r["period"], r["amount_idr"], r["status"], r["bill_id"]) for r in credits] == [
        (p, PREMIUM, "carried_over", bill.bill_id) for p in left]
    # finance and ops see the credit held at BPJS without a query
    await refresh_gauges(conn)
    assert carried_over(prepaid) == 3 * PREMIUM
    balances = {r["account"].rsplit(":", 1)[0]: r["balance_idr"] for r in await conn.fetch(
        "SELECT account, balance_idr FROM finance.account_balances WHERE account LIKE $1",
        f"%:{prepaid.id}")}
    assert balances == {"expense:premium": 9 * PREMIUM, "liability:bpjs_payable": 0,
                        "asset:unapplied": 0, "asset:bpjs_credit": 3 * PREMIUM}
    # the money is at BPJS: the budget stays committed (a credit, apart from what is booked)
    assert await conn.fetchval(
        "SELECT booked_idr FROM ledger.budget_allocations WHERE programme = $1",
        prepaid.id) == budget_before
    use = await conn.fetchrow("SELECT booked_idr, credit_idr FROM finance.budget_utilisation "
                              "WHERE programme = $1", prepaid.id)
    assert (use["booked_idr"], use["credit_idr"]) == (budget_before - 3 * PREMIUM, 3 * PREMIUM)
    statuses = await conn.fetch("SELECT status, count(*) FROM finance.contributions "
                                "WHERE nik = $1 GROUP BY status ORDER BY status", worker)
    assert [tuple(r) for r in statuses] == [("cancelled", 3), ("paid", 9)]

    # one credit is refunded instead of carried over; the journal still balances
    refunded = credits[0]["contribution_id"]
    assert await refund_credit(conn, refunded, reason="worker moved, refund asked",
                               refunded_by="bpkad") == PREMIUM
    assert await refund_credit(conn, refunded, reason="again", refunded_by="bpkad") is None
    assert await conn.fetchval("SELECT status FROM finance.credits WHERE contribution_id = $1",
                               refunded) == "refunded"
    await refresh_gauges(conn)
    assert carried_over(prepaid) == 2 * PREMIUM
    assert await conn.fetchval(
        "SELECT balance_idr FROM finance.account_balances WHERE account = $1",
        f"asset:refund_due:{prepaid.id}") == PREMIUM
    assert await conn.fetchval("SELECT sum(balance_idr) FROM finance.account_balances") == 0


async def test_a_prepaid_programme_is_not_billed_monthly_nor_outside_its_fiscal_year(
    conn: asyncpg.Connection, prepaid: Programme, malang: Programme
) -> None:
    with pytest.raises(BillError, match="billed prepaid"):
        await issue_bill(conn, prepaid, "2025-12", issued_by="test", today=IN_FISCAL_2025)
    with pytest.raises(BillError, match="charged to 2026"):
        await issue_prepaid_bill(conn, prepaid, date(2026, 1, 5), issued_by="test",
                                 today=IN_FISCAL_2025)
    assert await conn.fetchval(
        "SELECT mode || '/' || months FROM ledger.programme_billing WHERE programme = $1",
        prepaid.id) == "prepaid/12"
