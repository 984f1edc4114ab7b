"""Every rupiah received is in the journal: exact, partial, excess, unknown-bill and duplicate
payments, a top-up that completes a partial bill, and resolutions that move the money, on
real PostgreSQL. After every step the journal's cash equals the payments received."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import asyncpg
import pytest

from schemas.events import PaymentConfirmed
from services.domain.programme import Billing, Programme
from services.ledger import book
from services.ledger.bills import Bill, issue_bill
from services.ledger.budget import ensure_allocation
from services.ledger.payments import ResolutionError, apply_payment, resolve_discrepancy
from tests.support.ledger import IN_FISCAL_2025, NikSource, programme_copy, schedule

pytestmark = pytest.mark.integration

PREMIUM = 16_800
MONTHS = ["2025-12", "2026-01", "2026-02"]


@pytest.fixture
async def programme(conn: asyncpg.Connection, malang: Programme) -> Programme:
    copy = programme_copy(malang, budget_idr=10**12, billing=Billing())
    await ensure_allocation(conn, copy)
    return copy


def paid(programme: Programme, period: str, amount: int, reference: str | None = None,
         payment_id: uuid.UUID | None = None) -> PaymentConfirmed:
    return PaymentConfirmed(
        payment_id=payment_id or uuid.uuid4(), programme=programme.id, period=period,
        amount_idr=amount, reference=reference or f"BPJS-{uuid.uuid4().hex[:10]}",
        paid_at=datetime(2025, 12, 12, 9, 30, tzinfo=UTC))


async def bills(conn: asyncpg.Connection, programme: Programme, niks: NikSource,
                workers: int) -> list[Bill]:
    await book.book_schedules(conn, [schedule(programme, n, MONTHS)
                                     for n in niks.take(workers)])
    issued = [await issue_bill(conn, programme, p, issued_by="test",
                               today=IN_FISCAL_2025) for p in MONTHS]
    assert all(b is not None and b.amount_idr == workers * PREMIUM for b in issued)
    return [b for b in issued if b is not None]


async def journal(conn: asyncpg.Connection, programme: Programme) -> dict[str, int]:
    """Balances of the programme's accounts (debit positive), and the payments received."""
    rows = await conn.fetch(
        "SELECT account, balance_idr FROM finance.account_balances WHERE account LIKE $1 "
        "OR account = $2", f"%:{programme.id}", f"asset:cash:{programme.funding_source}")
    balances = {r["account"].rsplit(":", 1)[0]: r["balance_idr"] for r in rows}
    balances["received"] = await conn.fetchval(
        "SELECT coalesce(sum(amount_idr), 0) FROM ledger.payments WHERE programme = $1",
        programme.id)
    return balances


async def assert_cash_is_payments(conn: asyncpg.Connection, programme: Programme) -> None:
    row = await conn.fetchrow(
        "SELECT received_idr, journal_cash_idr, unapplied_idr, difference_idr "
        "FROM finance.cash_reconciliation WHERE programme = $1", programme.id)
    assert row["received_idr"] == row["journal_cash_idr"]
    assert row["difference_idr"] == 0
    open_money = await conn.fetchval(
        "SELECT coalesce(sum(unapplied_idr), 0) FROM finance.discrepancies WHERE programme = $1",
        programme.id)
    assert row["unapplied_idr"] == open_money  # suspense holds exactly the open discrepancies
    assert await conn.fetchval("SELECT sum(balance_idr) FROM finance.account_balances") == 0


async def test_every_payment_is_in_the_journal_at_once_whatever_it_matches(
    conn: asyncpg.Connection, programme: Programme, niks: NikSource
) -> None:
    dec, jan, feb = await bills(conn, programme, niks, 5)
    bill = 5 * PREMIUM
    exact = paid(programme, "2025-12", bill)
    outcomes = [
        await apply_payment(conn, exact),
        await apply_payment(conn, exact),  # the same confirmation again: replayed
        await apply_payment(conn, paid(programme, "2026-01", 3 * PREMIUM, "REF-PART")),
        await apply_payment(conn, paid(programme, "2026-02", 6 * PREMIUM, "REF-MORE")),
        await apply_payment(conn, paid(programme, "2027-05", PREMIUM, "REF-NONE")),
        await apply_payment(conn, paid(programme, "2026-02", bill, "REF-PART")),  # reused ref
    ]
    assert [(o.outcome, o.kind) for o in outcomes] == [
        ("settled", None), ("replayed", None), ("discrepancy", "partial"),
        ("discrepancy", "excess"), ("discrepancy", "unknown_bill"),
        ("discrepancy", "duplicate_reference")]
    balances = await journal(conn, programme)
    received = bill + 3 * PREMIUM + 6 * PREMIUM + PREMIUM + bill
    assert balances["received"] == received
    assert balances["asset:cash"] <= -received  # (cash is shared by the module's programmes)
    assert balances["asset:unapplied"] == received - bill  # all but the settled bill
    await assert_cash_is_payments(conn, programme)

    # a top-up of the missing two months completes the partial bill of January
    topped = await apply_payment(conn, paid(programme, "2026-01", 2 * PREMIUM, "REF-TOPUP"))
    assert (topped.outcome, topped.bills) == ("settled", (jan.bill_id,))
    partial = await conn.fetchrow(
        "SELECT status, action, applied_to_bill_id, applied_idr, unapplied_idr "
        "FROM finance.discrepancies WHERE reference = 'REF-PART' AND kind = 'partial'")
    assert tuple(partial) == ("resolved", "topped_up", jan.bill_id, 3 * PREMIUM, 0)
    assert await conn.fetchval("SELECT status FROM finance.bills WHERE bill_id = $1",
                               jan.bill_id) == "paid"
    await assert_cash_is_payments(conn, programme)

    # the excess payment settles February; the month left over is refunded
    excess = await conn.fetchval(
        "SELECT discrepancy_id FROM finance.discrepancies WHERE reference = 'REF-MORE'")
    with pytest.raises(ResolutionError, match="left after the bill"):
        await resolve_discrepancy(conn, excess, resolution="x", resolved_by="bpkad",
                                  action="apply", bill_id=feb.bill_id)
    done = await resolve_discrepancy(
        conn, excess, resolution="bill paid; refund of one month requested, letter 12/2025",
        resolved_by="bpkad", action="apply", bill_id=feb.bill_id, rest="refund")
    assert done is not None
    assert (done.applied_idr, done.refunded_idr, done.carried_over_idr) == (
        bill, PREMIUM, 0)
    assert await conn.fetchval("SELECT status FROM finance.bills WHERE bill_id = $1",
                               feb.bill_id) == "paid"
    await assert_cash_is_payments(conn, programme)

    # the payment for no bill is carried over; the reused reference is refunded
    unknown, reused = [await conn.fetchval(
        "SELECT discrepancy_id FROM finance.discrepancies WHERE reference = $1 AND kind = $2",
        ref, kind) for ref, kind in (("REF-NONE", "unknown_bill"),
                                     ("REF-PART", "duplicate_reference"))]
    with pytest.raises(ResolutionError, match="already paid"):
        await resolve_discrepancy(conn, reused, resolution="x", resolved_by="bpkad",
                                  action="apply", bill_id=dec.bill_id)
    assert await resolve_discrepancy(conn, unknown, resolution="kept at BPJS for 2027",
                                     resolved_by="bpkad", action="carry_over")
    assert await resolve_discrepancy(conn, reused, resolution="paid twice, refund asked",
                                     resolved_by="bpkad", action="refund")
    assert await resolve_discrepancy(conn, reused, resolution="again", resolved_by="bpkad",
                                     action="refund") is None
    balances = await journal(conn, programme)
    assert balances["asset:unapplied"] == 0
    assert balances["asset:refund_due"] == PREMIUM + bill
    assert balances["asset:bpjs_credit"] == PREMIUM
    assert balances["liability:bpjs_payable"] == 0  # all three bills are paid
    carried = await conn.fetch("SELECT source, amount_idr, status FROM finance.credits "
                               "WHERE programme = $1", programme.id)
    assert [tuple(r) for r in carried] == [("payment", PREMIUM, "carried_over")]
    await assert_cash_is_payments(conn, programme)


async def test_a_partial_payment_cannot_be_applied_to_a_bill_it_does_not_cover(
    conn: asyncpg.Connection, programme: Programme, niks: NikSource
) -> None:
    dec, _, _ = await bills(conn, programme, niks, 2)
    outcome = await apply_payment(conn, paid(programme, "2025-12", PREMIUM))
    assert outcome.kind == "partial"
    partial = await conn.fetchval(
        "SELECT discrepancy_id FROM finance.discrepancies WHERE programme = $1", programme.id)
    with pytest.raises(ResolutionError, match="less than the bill"):
        await resolve_discrepancy(conn, partial, resolution="x", resolved_by="bpkad",
                                  action="apply", bill_id=dec.bill_id)
    # nothing moved and the discrepancy is still open, its money in suspense
    row = await conn.fetchrow("SELECT status, unapplied_idr FROM finance.discrepancies "
                              "WHERE discrepancy_id = $1", partial)
    assert tuple(row) == ("open", PREMIUM)
    await assert_cash_is_payments(conn, programme)
