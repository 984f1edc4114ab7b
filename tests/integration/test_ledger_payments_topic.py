"""The ledger service consumes iuran.payments.v1 (real broker, service processes, real
PostgreSQL): a payment is recorded, and its bill settled in the journal, once however often
it is delivered; one for no issued bill becomes a discrepancy, a malformed one is a dead
letter of the payments topic."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime

import asyncpg
import pytest

from schemas.events import TOPIC_PAYMENTS, TOPIC_REJECTED, PaymentConfirmed
from services.domain.programme import Billing, load_programmes
from services.ledger import book
from services.ledger.bills import issue_bill
from services.ledger.budget import ensure_allocation
from services.runtime.settings import Settings
from services.runtime.stack import ServiceProcesses
from tests.support.kafka import collect, publish
from tests.support.ledger import IN_FISCAL_2025, NikSource, programme_copy, schedule
from tests.support.settle import PAYMENTS_STAGE, handled

pytestmark = pytest.mark.integration


async def test_payments_from_the_topic_are_recorded_once_and_never_applied_silently(
    stack: ServiceProcesses, settings: Settings, db: asyncpg.Pool
) -> None:
    programme = f"unbilled-{uuid.uuid4().hex[:8]}"  # no bill is ever issued for it
    payment = PaymentConfirmed(
        payment_id=uuid.uuid4(), programme=programme, period="2025-12", amount_idr=433_574_400,
        reference=f"BPJS-{uuid.uuid4().hex[:8]}", paid_at=datetime(2025, 12, 12, tzinfo=UTC))
    value = payment.model_dump_json().encode()
    marker = uuid.uuid4().hex
    await publish(settings, TOPIC_PAYMENTS, [(programme.encode(), value)] * 3 + [
        (programme.encode(), f'{{"payment_id": "{marker}"}}'.encode())])

    await handled(settings, PAYMENTS_STAGE)  # the ledger committed past all four
    rows = await db.fetch("SELECT kind, expected_idr, paid_idr, reference, status "
                          "FROM finance.discrepancies WHERE programme = $1", programme)
    assert [tuple(r) for r in rows] == [
        ("unknown_bill", 0, 433_574_400, payment.reference, "open")]
    assert await db.fetchval("SELECT count(*) FROM ledger.payments WHERE programme = $1",
                             programme) == 1

    # a confirmation that cannot be taken is a dead letter of the payments topic (finance
    # lists it), never a registration rejection
    dead = await db.fetch("SELECT reason, detail FROM ledger.dead_letters "
                          "WHERE topic = $1 AND position($2 in convert_from(value, 'UTF8')) > 0",
                          TOPIC_PAYMENTS, marker)
    assert [r["reason"] for r in dead] == ["malformed_payment"]
    assert "programme" in dead[0]["detail"]  # the first field it lacks


async def test_a_payment_with_a_naive_paid_at_is_a_dead_letter_finance_lists(
    stack: ServiceProcesses, settings: Settings, db: asyncpg.Pool
) -> None:
    payment_id = str(uuid.uuid4())
    naive = json.dumps({"payment_id": payment_id, "programme": "malang-2025",
                        "period": "2025-12", "amount_idr": 16_800, "reference": "SP2D-NAIVE",
                        "paid_at": "2025-12-12T10:00:00"}).encode()
    await publish(settings, TOPIC_PAYMENTS, [(b"malang-2025", naive)])
    await handled(settings, PAYMENTS_STAGE)

    row = await db.fetchrow("SELECT service, reason, detail FROM ledger.dead_letters "
                            "WHERE topic = $1 AND value = $2", TOPIC_PAYMENTS, naive)
    assert row is not None, "the payment confirmation ended nowhere finance can see it"
    assert (row["service"], row["reason"]) == ("ledger", "malformed_payment")
    assert "paid_at" in row["detail"] and "timezone" in row["detail"]
    assert await db.fetchval("SELECT count(*) FROM ledger.payments WHERE payment_id = $1",
                             uuid.UUID(payment_id)) == 0
    assert not await collect(settings, TOPIC_REJECTED, lambda r: payment_id.encode() in r.value,
                             want=1, timeout=3)

    env = {k: v for k, v in os.environ.items() if not k.startswith("IURAN_")}
    env["IURAN_DATABASE_URL"] = settings.database_url or ""
    listing = await asyncio.to_thread(subprocess.run, [
        sys.executable, "-m", "services.cli.main", "deadletter", "list", "--service", "ledger",
        "--limit", "1000"], env=env, capture_output=True, text=True, timeout=60, check=False)
    assert listing.returncode == 0, listing.stderr
    listed = listing.stdout
    assert "malformed_payment" in listed and "SP2D-NAIVE" in listed


async def test_a_payment_delivered_three_times_settles_its_bill_once_in_the_journal(
    stack: ServiceProcesses, settings: Settings, database_url: str, db: asyncpg.Pool
) -> None:
    malang = load_programmes(Settings().programmes_dir)["malang-2025"]
    programme = programme_copy(malang, budget_idr=10 * 16_800, billing=Billing())  # monthly
    niks = NikSource().take(3)
    connection = await asyncpg.connect(database_url)
    try:
        await book.prepare(connection)
        await ensure_allocation(connection, programme)
        await book.book_schedules(connection, [schedule(programme, nik, ["2025-12"])
                                               for nik in niks])
        bill = await issue_bill(connection, programme, "2025-12", issued_by="test",
                                today=IN_FISCAL_2025)
    finally:
        await connection.close()
    assert bill is not None and bill.amount_idr == 3 * 16_800
    payment = PaymentConfirmed(
        payment_id=uuid.uuid4(), programme=programme.id, period="2025-12",
        amount_idr=bill.amount_idr, reference=f"BPJS-{uuid.uuid4().hex[:8]}",
        paid_at=datetime(2025, 12, 12, tzinfo=UTC))
    await publish(settings, TOPIC_PAYMENTS,
                  [(programme.id.encode(), payment.model_dump_json().encode())] * 3)
    await handled(settings, PAYMENTS_STAGE)

    transfers = await db.fetch(
        "SELECT t.contribution_id, t.amount_idr, t.debit_account "
        "FROM ledger.transfers t JOIN ledger.contributions c USING (contribution_id) "
        "WHERE c.programme = $1 AND t.kind = 'settlement'", programme.id)
    assert len(transfers) == 3, f"{len(transfers)} settlement transfers for 3 bill lines"
    assert len({t["contribution_id"] for t in transfers}) == 3
    assert sum(t["amount_idr"] for t in transfers) == bill.amount_idr
    assert {t["debit_account"] for t in transfers} == {f"liability:bpjs_payable:{programme.id}"}
    assert await db.fetchval("SELECT count(*) FROM ledger.bill_settlements "
                             "WHERE bill_id = $1", bill.bill_id) == 1
    assert await db.fetchval("SELECT count(*) FROM finance.discrepancies WHERE programme = $1",
                             programme.id) == 0
