"""Corrections of money already in the journal, as finance types them against a real
PostgreSQL ledger: a payment confirmed twice is voided by a reversing entry; a credit is
refunded only when its bill was paid; a refund from BPJS is recorded when the bank statement
shows it, clearing the refund due against cash."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import asyncpg
import pytest

from schemas.events import PaymentConfirmed
from services.domain.periods import period_range
from services.domain.programme import Billing, Programme
from services.ledger import book
from services.ledger.bills import issue_bill, issue_prepaid_bill
from services.ledger.budget import ensure_allocation
from services.ledger.payments import ResolutionError, apply_payment, refund_credit
from tests.support.cli import Run, cli_with, on_db
from tests.support.ledger import IN_FISCAL_2025, NikSource, programme_copy, schedule

pytestmark = pytest.mark.integration

PREMIUM = 16_800


@pytest.fixture
def cli(ledger_url: str, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> Iterator[Run]:
    with cli_with(monkeypatch, capsys, IURAN_DATABASE_URL=ledger_url) as run:
        yield run




def payment(programme: str, period: str, amount: int, reference: str) -> PaymentConfirmed:
    return PaymentConfirmed(payment_id=uuid.uuid4(), programme=programme, period=period,
                            amount_idr=amount, reference=reference,
                            paid_at=datetime(2025, 12, 12, 3, tzinfo=UTC))


def test_a_payment_confirmed_twice_is_voided_by_a_reversing_entry(
    cli: Run, ledger_url: str, malang: Programme, niks: NikSource
) -> None:
    monthly = programme_copy(malang, budget_idr=10 * PREMIUM, billing=Billing())
    first = payment(monthly.id, "2025-12", 2 * PREMIUM, "SP2D-0001")
    twice = payment(monthly.id, "2025-12", 2 * PREMIUM, "SP2D-0001-B")

    async def billed_and_paid_twice(connection: asyncpg.Connection) -> list[str]:
        await ensure_allocation(connection, monthly)
        await book.book_schedules(connection, [schedule(monthly, n, ["2025-12"])
                                               for n in niks.take(2)])
        await issue_bill(connection, monthly, "2025-12", issued_by="test", today=IN_FISCAL_2025)
        return [(await apply_payment(connection, p)).outcome for p in (first, twice)]
    assert on_db(ledger_url, billed_and_paid_twice) == ["settled", "discrepancy"]

    code, out, err = cli("payment", "void", str(twice.payment_id), "--reason",
                         "confirmed twice: same SP2D as SP2D-0001", "--by", "BPKAD")
    assert code == 0 and f"voided: Rp{2 * PREMIUM:,} back to cash" in out

    async def books(connection: asyncpg.Connection) -> dict[str, object]:
        return {
            "void": await connection.fetchval(
                "SELECT count(*) FROM ledger.transfers WHERE payment_id = $1 AND kind = 'void'",
                twice.payment_id),
            "discrepancy": tuple(await connection.fetchrow(
                "SELECT status, action, unapplied_idr FROM finance.discrepancies "
                "WHERE payment_id = $1", twice.payment_id)),
            "cash": tuple(await connection.fetchrow(
                "SELECT payments, received_idr, voided_idr, journal_cash_idr, unapplied_idr, "
                "difference_idr FROM finance.cash_reconciliation WHERE programme = $1",
                monthly.id)),
            "voids": await connection.fetchval(
                "SELECT reason FROM finance.payment_voids WHERE payment_id = $1",
                twice.payment_id),
            "journal": await connection.fetchval(
                "SELECT sum(balance_idr) FROM finance.account_balances"),
        }
    found = on_db(ledger_url, books)
    assert found == {
        "void": 1, "discrepancy": ("resolved", "voided", 0),
        "cash": (2, 4 * PREMIUM, 2 * PREMIUM, 2 * PREMIUM, 0, 0),
        "voids": "confirmed twice: same SP2D as SP2D-0001", "journal": 0}

    code, out, _ = cli("payment", "void", str(twice.payment_id), "--reason", "again")
    assert code == 0 and "already voided" in out
    code, out, err = cli("payment", "void", str(first.payment_id), "--reason", "oops")
    assert code == 2 and out == "" and "paid 1 bill(s)" in err.splitlines()[-1]


def test_a_credit_is_refunded_only_when_paid_and_cleared_when_the_refund_arrives(
    cli: Run, ledger_url: str, malang: Programme, niks: NikSource
) -> None:
    first, second = niks.take(2)
    year = list(period_range("2025-12", 12))
    ids = {nik: {c.period: c.contribution_id for c in schedule(malang, nik, year).contributions}
           for nik in (first, second)}

    async def billed_not_paid(connection: asyncpg.Connection) -> int:
        await ensure_allocation(connection, malang)
        await book.book_schedules(connection, [schedule(malang, n, year) for n in (first, second)])
        bill = await issue_prepaid_bill(connection, malang, IN_FISCAL_2025.replace(month=11,
                                        day=25), issued_by="test", today=IN_FISCAL_2025)
        assert bill is not None
        await book.book_schedules(connection, [schedule(malang, first, ["2026-11"],
                                                        kind="cancelled")])
        return bill.amount_idr
    amount = on_db(ledger_url, billed_not_paid)

    async def refund_unpaid(connection: asyncpg.Connection) -> None:
        await refund_credit(connection, ids[first]["2026-11"], reason="x", refunded_by="test")
    with pytest.raises(ResolutionError, match="is not paid"):
        on_db(ledger_url, refund_unpaid)

    async def paid_then_stopped(connection: asyncpg.Connection) -> None:
        outcome = await apply_payment(connection, payment(malang.id, "2025-11", amount,
                                                          "SP2D-PREPAID"))
        assert outcome.outcome == "settled"
        await book.book_schedules(connection, [schedule(malang, second, ["2026-11"],
                                                        kind="cancelled")])
    on_db(ledger_url, paid_then_stopped)
    code, out, _ = cli("bill", "refund-credit", str(ids[second]["2026-11"]), "--reason",
                       "refund letter to BPJS", "--by", "BPKAD")
    assert code == 0 and f"Rp{PREMIUM:,} refunded" in out

    code, out, err = cli("credit", "refund-received", "--programme", malang.id, "--amount",
                         str(2 * PREMIUM), "--bank-reference", "BANK-0001", "--on",
                         "2025-12-20", "--by", "BPKAD")
    assert code == 2 and "only Rp16,800 is due" in err.splitlines()[-1]
    code, out, _ = cli("credit", "refund-received", "--programme", malang.id, "--amount",
                       str(PREMIUM), "--bank-reference", "BANK-0001", "--on", "2025-12-20",
                       "--by", "BPKAD")
    assert code == 0 and "Rp0 still due" in out
    code, out, _ = cli("credit", "refund-received", "--programme", malang.id, "--amount",
                       str(PREMIUM), "--bank-reference", "BANK-0001", "--on", "2025-12-20")
    assert code == 0 and "already recorded" in out

    async def balances(connection: asyncpg.Connection) -> tuple[object, ...]:
        rows = {r["account"]: r["balance_idr"] for r in await connection.fetch(
            "SELECT account, balance_idr FROM finance.account_balances")}
        received = await connection.fetchval(
            "SELECT amount_idr FROM finance.refunds_received WHERE bank_reference = 'BANK-0001'")
        return rows.get(f"asset:refund_due:{malang.id}"), received, sum(rows.values())
    assert on_db(ledger_url, balances) == (0, PREMIUM, 0)
