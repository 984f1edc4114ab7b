"""The ledger service consumes iuran.payments.v1 (real broker, service processes, real
PostgreSQL): a payment is recorded once however often it is delivered, one for no issued
bill becomes a discrepancy, a malformed one lands in the rejected topic."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime

import asyncpg
import pytest

from schemas.events import TOPIC_PAYMENTS, TOPIC_REJECTED, PaymentConfirmed, RejectedEvent
from services.runtime.settings import Settings
from services.runtime.stack import ServiceProcesses
from tests.support.kafka import collect, publish

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

    deadline = time.monotonic() + 60
    rows: list[asyncpg.Record] = []
    while time.monotonic() < deadline and not rows:
        rows = await db.fetch("SELECT kind, expected_idr, paid_idr, reference, status "
                              "FROM finance.discrepancies WHERE programme = $1", programme)
        await asyncio.sleep(0.3)
    await asyncio.sleep(1)  # the replays have been consumed by now
    rows = await db.fetch("SELECT kind, expected_idr, paid_idr, reference, status "
                          "FROM finance.discrepancies WHERE programme = $1", programme)
    assert [tuple(r) for r in rows] == [
        ("unknown_bill", 0, 433_574_400, payment.reference, "open")]
    assert await db.fetchval("SELECT count(*) FROM ledger.payments WHERE programme = $1",
                             programme) == 1

    rejected = await collect(settings, TOPIC_REJECTED, lambda r: marker.encode() in r.value,
                             want=1)
    event = RejectedEvent.model_validate_json(rejected[0].value)
    assert (event.source_topic, [e.code for e in event.errors]) == (
        TOPIC_PAYMENTS, ["malformed_payment"])
