"""Amounts no finance view can choke on: a payment beyond its programme's plausibility
bound is a dead letter of the payments topic (the running ledger), and the journal's sums
are computed without overflow whatever amounts it holds (a real PostgreSQL ledger)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import asyncpg
import pytest

from schemas.events import TOPIC_PAYMENTS, PaymentConfirmed
from services.ledger.payments import apply_payment
from services.runtime.settings import Settings
from services.runtime.stack import ServiceProcesses
from tests.support.kafka import publish
from tests.support.settle import PAYMENTS_STAGE, handled

pytestmark = pytest.mark.integration

NEAR_INT64_MAX = 9_000_000_000_000_000_000


def confirmation(programme: str, amount: int) -> PaymentConfirmed:
    return PaymentConfirmed(payment_id=uuid.uuid4(), programme=programme, period="2025-12",
                            amount_idr=amount, reference=f"SP2D-{uuid.uuid4().hex[:8]}",
                            paid_at=datetime(2025, 12, 12, 3, tzinfo=UTC))


async def test_a_payment_beyond_the_programmes_bound_is_a_dead_letter(
    stack: ServiceProcesses, settings: Settings, db: asyncpg.Pool
) -> None:
    huge = confirmation("malang-2025", NEAR_INT64_MAX)
    fine = confirmation(f"bounded-{uuid.uuid4().hex[:8]}", 16_800)
    await publish(settings, TOPIC_PAYMENTS, [
        (b"malang-2025", huge.model_dump_json().encode()),
        (b"malang-2025", fine.model_dump_json().encode())])
    await handled(settings, PAYMENTS_STAGE)

    dead = await db.fetchrow(
        "SELECT reason, detail FROM ledger.dead_letters WHERE topic = $1 AND "
        "convert_from(value, 'UTF8')::jsonb ->> 'payment_id' = $2",
        TOPIC_PAYMENTS, str(huge.payment_id))
    assert dead is not None and dead["reason"] == "implausible_amount"
    assert "Rp5,300,000,000" in dead["detail"]  # malang-2025's allocation
    recorded = {r["payment_id"] for r in await db.fetch(
        "SELECT payment_id FROM ledger.payments WHERE payment_id = ANY($1::uuid[])",
        [huge.payment_id, fine.payment_id])}
    assert recorded == {fine.payment_id}
    assert await db.fetchval("SELECT sum(balance_idr) FROM finance.account_balances") == 0


async def test_the_journals_sums_do_not_overflow(conn: asyncpg.Connection) -> None:
    programme = f"huge-{uuid.uuid4().hex[:8]}"
    for _ in range(2):  # each within bigint, together not
        await apply_payment(conn, confirmation(programme, NEAR_INT64_MAX))
    balances = {r["account"]: r["balance_idr"] for r in await conn.fetch(
        "SELECT account, balance_idr FROM finance.account_balances")}
    assert balances[f"asset:unapplied:{programme}"] == 2 * NEAR_INT64_MAX
    assert sum(balances.values()) == 0
    row = await conn.fetchrow(
        "SELECT received_idr, journal_cash_idr, difference_idr FROM finance.cash_reconciliation "
        "WHERE programme = $1", programme)
    assert tuple(row) == (2 * NEAR_INT64_MAX, 2 * NEAR_INT64_MAX, 0)
    assert json.dumps(int(row["received_idr"])) == str(2 * NEAR_INT64_MAX)
