"""Coverage split by BPJS's verdict on the real processes (ledger service, relay, projector,
broker, PostgreSQL): booked workers await BPJS, a verdict makes them verified (covered), a
rejected worker leaves the figures with its cancelled months, a verdict that comes before
the worker's months counts when they come, and a verdict event delivered again, or an older
verdict delivered late, changes nothing."""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from schemas.events import (
    TOPIC_BPJS_VERIFICATIONS,
    TOPIC_LEDGER,
    LedgerBillSettled,
    LedgerBpjsVerdict,
    LedgerEvent,
)
from services.domain.coverage import snapshot
from services.domain.programme import Programme, load_programmes
from services.ledger.coverage import read_coverage
from services.runtime.settings import Settings
from services.runtime.stack import ServiceProcesses
from tests.integration.test_bpjs_verdicts import VERDICTS_STAGE, _verdict
from tests.support.cli import iuran_command
from tests.support.kafka import publish
from tests.support.ledger import NikSource, book_months, programme_copy
from tests.support.settle import handled

pytestmark = pytest.mark.integration

NIKS = NikSource(region=8)
MONTHS = ["2025-12", "2026-01", "2026-02"]


async def _figures(db: asyncpg.Pool, programme: Programme) -> tuple[int, int, int]:
    """(active, verified by BPJS, awaiting BPJS) as the coverage snapshot shows them."""
    async with db.acquire() as connection:
        seen = snapshot(programme, await read_coverage(connection), datetime.now(UTC))
    return seen.active_workers, seen.verified_workers, seen.awaiting_bpjs_workers


async def _until(db: asyncpg.Pool, programme: Programme, wanted: tuple[int, int, int],
                 timeout: float = 60.0) -> tuple[int, int, int]:
    """The figures once they are ``wanted`` (or as they are when ``timeout`` passed)."""
    deadline = time.monotonic() + timeout
    while True:
        seen = await _figures(db, programme)
        if seen == wanted or time.monotonic() > deadline:
            return seen
        await asyncio.sleep(0.2)


async def _applied(db: asyncpg.Pool, outbox_id: int, timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    query = "SELECT count(*) = 1 FROM coverage.applied WHERE outbox_id = $1"
    while True:
        if await db.fetchval(query, outbox_id) or time.monotonic() > deadline:
            return bool(await db.fetchval(query, outbox_id))
        await asyncio.sleep(0.2)


async def test_booked_workers_await_bpjs_until_verified_and_a_rejected_one_leaves(
    stack: ServiceProcesses, settings: Settings, database_url: str, db: asyncpg.Pool
) -> None:
    programme = programme_copy(load_programmes(settings.programmes_dir)["malang-2025"],
                               budget_idr=10**12)
    accepted, refused, pending, early = NIKS.take(4)
    await book_months(database_url, programme, [accepted, refused, pending], MONTHS)
    assert await _until(db, programme, (3, 0, 3)) == (3, 0, 3)

    at = datetime.now(UTC).replace(microsecond=0)
    await publish(settings, TOPIC_BPJS_VERIFICATIONS, [
        (nik.encode(), _verdict(programme.id, nik, status, at))
        for nik, status in ((accepted, "verified"), (refused, "rejected"),
                            (early, "verified"))])
    await handled(settings, VERDICTS_STAGE)
    # the rejected worker's months are cancelled: it leaves; the verdict on a worker with
    # no months yet counts nothing
    assert await _until(db, programme, (2, 1, 1)) == (2, 1, 1)

    # its months come after its verdict: it is verified when they are folded
    await book_months(database_url, programme, [early], MONTHS)
    assert await _until(db, programme, (3, 2, 1)) == (3, 2, 1)

    # the verdicts' event delivered twice more, and an older rejection of a verified worker
    # delivered late, then a marker behind them on the same partition
    row = await db.fetchrow(
        "SELECT event FROM ledger.outbox WHERE programme = $1 AND event LIKE "
        "'%bpjs_verdicts%' ORDER BY outbox_id LIMIT 1", programme.id)
    assert row is not None
    stale = LedgerEvent(
        outbox_id=2**62 + random.randrange(2**40), programme=programme.id,
        recorded_at=datetime.now(UTC),
        bpjs_verdicts=[LedgerBpjsVerdict(nik=accepted, status="rejected",
                                         verified_at=at - timedelta(days=1))])
    marker = LedgerEvent(
        outbox_id=stale.outbox_id + 1, programme=programme.id, recorded_at=datetime.now(UTC),
        bills_settled=[LedgerBillSettled(bill_id=uuid.uuid4(), period="2025-12",
                                         amount_idr=0)])
    key = programme.id.encode()
    await publish(settings, TOPIC_LEDGER, [
        (key, row["event"].encode()), (key, row["event"].encode()),
        (key, stale.model_dump_json().encode()), (key, marker.model_dump_json().encode())])
    assert await _applied(db, marker.outbox_id)
    assert await _figures(db, programme) == (3, 2, 1)


async def test_verdicts_recorded_before_the_outbox_carried_them_are_announced_once(
    stack: ServiceProcesses, settings: Settings, database_url: str, db: asyncpg.Pool
) -> None:
    """A verdict the ledger kept before its outbox carried verdicts (an upgrade): coverage
    sees the worker awaiting BPJS until `iuran bpjs announce` sends the standing verdicts
    through the outbox; announcing again changes nothing."""
    programme = programme_copy(load_programmes(settings.programmes_dir)["malang-2025"],
                               budget_idr=10**12)
    (worker,) = NIKS.take(1)
    await book_months(database_url, programme, [worker], MONTHS)
    await db.execute(
        """INSERT INTO ledger.bpjs_verifications (verification_id, programme, nik, status, kpj,
                  effective_period, verified_at, fingerprint)
           VALUES ($1, $2, $3, 'verified', $4, '2025-12', now(), 'recorded before')""",
        uuid.uuid4(), programme.id, worker, f"26{worker[-9:]}")
    assert await _until(db, programme, (1, 0, 1)) == (1, 0, 1)

    for _ in range(2):
        announced = await iuran_command(settings, "bpjs", "announce",
                                        "--programme", programme.id)
        assert announced.returncode == 0, announced.stderr
        assert announced.stdout == (f"announced 1 standing verdict(s) of {programme.id} "
                                    "to the ledger's outbox.\n")
        assert await _until(db, programme, (1, 1, 0)) == (1, 1, 0)
