"""`iuran bill` and `iuran discrepancy` as finance types them, against real PostgreSQL: a
prepaid bill issued on its day, a short payment and its top-up, an excess payment applied
with the rest carried over, a credit refunded."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import asyncpg
import pytest

from schemas.events import PaymentConfirmed
from services.domain.periods import period_range
from services.domain.programme import Programme
from services.ledger import book
from services.ledger.budget import ensure_allocation
from services.ledger.payments import apply_payment
from tests.support.cli import Run, cli_with, on_db
from tests.support.ledger import NikSource, schedule

pytestmark = pytest.mark.integration

PREMIUM = 16_800


@pytest.fixture
def cli(ledger_url: str, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> Iterator[Run]:
    with cli_with(monkeypatch, capsys, IURAN_DATABASE_URL=ledger_url,
                  IURAN_BUSINESS_DATE="2025-11-25") as run:  # the programme's year is open
        yield run




def payment(programme: str, period: str, amount: int, reference: str) -> PaymentConfirmed:
    return PaymentConfirmed(payment_id=uuid.uuid4(), programme=programme, period=period,
                            amount_idr=amount, reference=reference,
                            paid_at=datetime(2025, 11, 25, 3, tzinfo=UTC))


def test_finance_issues_the_prepaid_bill_and_moves_payment_money_by_command(
    cli: Run, ledger_url: str, malang: Programme, niks: NikSource
) -> None:
    run = cli
    workers = niks.take(3)

    async def enrol(connection: asyncpg.Connection) -> None:
        await ensure_allocation(connection, malang)
        await book.book_schedules(connection, [
            schedule(malang, n, list(period_range("2025-12", 12))) for n in workers])
    on_db(ledger_url, enrol)

    code, out, err = run("bill", "issue", "--programme", "malang-2025", "--period", "2025-12")
    assert code == 2 and "billed prepaid" in err
    code, out, _ = run("bill", "issue", "--programme", "malang-2025", "--on", "2025-11-25",
                       "--by", "BPKAD")
    assert code == 0
    assert "prepaid bill #1 issued, 3 workers, 36 contributions, Rp604,800, due 2025-11-25" in out
    bill_id = uuid.UUID(out.rsplit("bill_id ", 1)[1].rstrip(")\n"))

    # a short payment waits in suspense; its top-up settles the bill
    async def short(connection: asyncpg.Connection) -> None:
        await apply_payment(connection, payment("malang-2025", "2025-11", 20 * PREMIUM, "SP2D-1"))
    on_db(ledger_url, short)
    code, out, _ = run("discrepancy", "list")
    assert code == 0 and "partial: paid Rp336,000, expected Rp604,800, in suspense Rp336,000" in out
    partial = out.split()[0]
    code, out, err = run("discrepancy", "resolve", partial, "--apply-to", str(bill_id),
                         "--resolution", "x", "--by", "BPKAD")
    assert code == 2 and "less than the bill" in err

    async def top_up(connection: asyncpg.Connection) -> str:
        outcome = await apply_payment(
            connection, payment("malang-2025", "2025-11", 16 * PREMIUM, "SP2D-2"))
        return outcome.outcome
    assert on_db(ledger_url, top_up) == "settled"
    code, out, _ = run("bill", "list", "--programme", "malang-2025")
    assert "malang-2025 2025-11 #1 (prepaid): 3 workers, 36 contributions 2025-12..2026-11, " \
           "Rp604,800, due 2025-11-25, paid" in out

    # a payment for no bill: carried over by command, visible as a credit
    async def stray(connection: asyncpg.Connection) -> None:
        await apply_payment(connection, payment("malang-2025", "2025-10", PREMIUM, "SP2D-3"))
    on_db(ledger_url, stray)
    code, out, _ = run("discrepancy", "list")
    stray_id = out.split()[0]
    code, out, _ = run("discrepancy", "resolve", stray_id, "--carry-over", "--resolution",
                       "kept at BPJS", "--by", "BPKAD")
    assert code == 0 and "carried over Rp16,800" in out
    code, out, _ = run("discrepancy", "resolve", stray_id, "--refund", "--resolution", "again")
    assert code == 0 and "already resolved" in out

    # a deregistration of two paid months: credits, one refunded by command
    async def deregister(connection: asyncpg.Connection) -> None:
        await book.book_schedules(connection, [
            schedule(malang, workers[0], ["2026-10", "2026-11"], kind="cancelled")])
    on_db(ledger_url, deregister)
    code, out, _ = run("bill", "credits", "--programme", "malang-2025")
    assert out.count("carried_over") == 3  # two months and the stray payment
    contribution = next(line.split()[2] for line in out.splitlines()
                        if line.split()[1] == "contribution")
    code, out, _ = run("bill", "refund-credit", contribution, "--reason", "letter 1/2026")
    assert code == 0 and "credit of Rp16,800 refunded" in out

    async def reconciled(connection: asyncpg.Connection) -> tuple[int, int]:
        row = await connection.fetchrow(
            "SELECT received_idr, difference_idr FROM finance.cash_reconciliation "
            "WHERE programme = 'malang-2025'")
        return row["received_idr"], row["difference_idr"]
    assert on_db(ledger_url, reconciled) == (37 * PREMIUM, 0)
