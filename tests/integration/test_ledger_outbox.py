"""The ledger's outbox and the coverage projector: the booking writes its outbox row in its
own transaction (none when it rolls back), the relay sends it to iuran.ledger.v1, the
projector folds it once however often it is delivered, and coverage equals what the ledger
holds (real PostgreSQL; real broker and service processes for the relay and the projector)."""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest

from schemas.events import (
    TOPIC_LEDGER,
    TOPIC_REGISTRATIONS,
    LedgerBillSettled,
    LedgerEvent,
    LedgerWorkerMonths,
)
from services.domain.coverage import snapshot
from services.domain.programme import Programme, load_programmes
from services.ledger import book, relay
from services.ledger.budget import ensure_allocation
from services.ledger.coverage import read_coverage
from services.projector import fold
from services.projector.applier import catch_up
from services.runtime.settings import Settings
from services.runtime.stack import ServiceProcesses
from tests.support.coverage import as_figures, ledger_figures
from tests.support.faults import create_ledger_role
from tests.support.kafka import publish
from tests.support.ledger import NikSource, programme_copy, schedule
from tests.support.workers import as_message, registration, unique_nik

pytestmark = pytest.mark.integration

YEAR = ["2025-12", "2026-01", "2026-02", "2026-03", "2026-04", "2026-05",
        "2026-06", "2026-07", "2026-08", "2026-09", "2026-10", "2026-11"]


async def outbox_of(conn: asyncpg.Connection, programme: str) -> list[asyncpg.Record]:
    return await conn.fetch("SELECT outbox_id, event FROM ledger.outbox WHERE programme = $1"
                            " ORDER BY outbox_id", programme)


async def test_the_booking_writes_its_outbox_row_and_a_rolled_back_booking_writes_none(
    conn: asyncpg.Connection, malang: Programme, niks: NikSource
) -> None:
    programme = programme_copy(malang, budget_idr=10**12)
    await ensure_allocation(conn, programme)
    first, second = niks.take(2)
    await book.book_schedules(conn, [schedule(programme, first, YEAR)])
    rows = await outbox_of(conn, programme.id)
    assert len(rows) == 1
    event = LedgerEvent.model_validate_json(rows[0]["event"])
    assert event.outbox_id == rows[0]["outbox_id"]
    assert [(w.nik, w.booked, w.held) for w in event.workers] == [(first, YEAR, [])]

    with pytest.raises(RuntimeError):
        async with conn.transaction():
            await book.book_schedules(conn, [schedule(programme, second, YEAR)])
            raise RuntimeError("the transaction rolls back")
    assert len(await outbox_of(conn, programme.id)) == 1
    assert await conn.fetchval(
        "SELECT count(*) FROM ledger.contributions WHERE nik = $1", second) == 0

    # a replay books nothing and writes nothing
    await book.book_schedules(conn, [schedule(programme, first, YEAR)])
    assert len(await outbox_of(conn, programme.id)) == 1


async def test_an_outbox_row_is_published_once_and_never_changed_after(
    conn: asyncpg.Connection, malang: Programme, niks: NikSource
) -> None:
    programme = programme_copy(malang, budget_idr=10**12)
    await ensure_allocation(conn, programme)
    await book.book_schedules(conn, [schedule(programme, niks.take(1)[0], YEAR)])
    (row,) = await outbox_of(conn, programme.id)
    await conn.execute("UPDATE ledger.outbox SET published_at = now() WHERE outbox_id = $1",
                       row["outbox_id"])
    for change in ("UPDATE ledger.outbox SET published_at = now() WHERE outbox_id = $1",
                   "UPDATE ledger.outbox SET event = '{}' WHERE outbox_id = $1",
                   "DELETE FROM ledger.outbox WHERE outbox_id = $1"):
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute(change, row["outbox_id"])


async def test_rows_no_delivery_brought_are_applied_from_the_outbox_after_the_grace(
    conn: asyncpg.Connection, malang: Programme, niks: NikSource
) -> None:
    """A broker that lost events (the embedded one keeps topics in memory): the projector's
    leader applies the old rows straight from the outbox, once."""
    programme = programme_copy(malang, budget_idr=3 * 12 * 16_800)
    await ensure_allocation(conn, programme)
    await book.book_schedules(conn, [schedule(programme, nik, YEAR) for nik in niks.take(4)])
    # and a row whose sums break the totals (within the contract): set aside, not a stop
    poison_id = await conn.fetchval("SELECT nextval('ledger.outbox_ids')")
    poison = LedgerEvent(
        outbox_id=poison_id, programme=programme.id, recorded_at=datetime.now(UTC),
        workers=[LedgerWorkerMonths(nik=niks.take(1)[0], opd_code="DISNAKER",
                                    category="ojek_online", kecamatan="Klojen",
                                    amount_idr=2**62, held=YEAR[:3])])
    await conn.execute("INSERT INTO ledger.outbox (outbox_id, programme, event)"
                       " VALUES ($1, $2, $3)", poison_id, programme.id,
                       poison.model_dump_json())
    swept, found = await catch_up(conn, 0, grace=3600)
    assert (swept, found) == (0, [])  # too young: a delivery may still bring them
    swept, found = await catch_up(conn, 0, grace=0)
    assert programme.id in {e.programme for e in found} and swept >= max(
        e.outbox_id for e in found)
    seen = snapshot(programme, await read_coverage(conn), datetime.now(UTC))
    assert as_figures(seen.model_dump(mode="json")) == await ledger_figures(
        conn, programme.id, programme.coverage.headline_period)
    assert (seen.active_workers, seen.awaiting_budget_workers) == (3, 1)
    assert poison_id not in {e.outbox_id for e in found}
    assert await conn.fetchval(
        "SELECT reason FROM ledger.dead_letters WHERE service = 'projector'"
        " AND topic = 'ledger.outbox' AND \"offset\" = $1", poison_id) == "out_of_range"
    assert await catch_up(conn, 0, grace=0) == (swept, [])


async def test_the_least_privileged_writer_role_books_relays_and_folds(
    ledger_url: str, malang: Programme, niks: NikSource
) -> None:
    """The services may run as a login role holding only iuran_ledger_writer: the booking
    writes its outbox row, the relay takes and marks rows, the projector folds them."""
    role = f"iuran_outbox_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(ledger_url)
    try:
        url = await create_ledger_role(ledger_url, role)
        conn = await asyncpg.connect(url)
        try:
            await book.prepare(conn)
            programme = programme_copy(malang, budget_idr=10**12)
            await ensure_allocation(admin, programme)
            await book.book_schedules(conn, [schedule(programme, niks.take(1)[0], YEAR)])
            async with conn.transaction():
                rows = await conn.fetch(relay.TAKE, 1000)
                await conn.execute(relay.MARK, [r["outbox_id"] for r in rows])
            assert programme.id in {r["programme"] for r in rows}
            await fold.apply(conn, [LedgerEvent.model_validate_json(r["event"]) for r in rows])
            await catch_up(conn, 0, grace=0)
            seen = snapshot(programme, await read_coverage(conn), datetime.now(UTC))
            assert seen.active_workers == 1
        finally:
            await conn.close()
    finally:
        await admin.execute(f'DROP OWNED BY "{role}"; DROP ROLE IF EXISTS "{role}"')
        await admin.close()


# --- through the broker: the relay and the projector as processes -------------------------

async def coverage_and_ledger(db: asyncpg.Pool, programme: Programme) -> tuple[Any, Any]:
    async with db.acquire() as connection:
        seen = snapshot(programme, await read_coverage(connection), datetime.now(UTC))
        expected = await ledger_figures(connection, programme.id,
                                        programme.coverage.headline_period)
    return as_figures(seen.model_dump(mode="json")), expected


async def eventually(db: asyncpg.Pool, query: str, *args: object, timeout: float) -> bool:
    """True once ``query`` answers true (within ``timeout`` seconds)."""
    deadline = time.monotonic() + timeout
    while True:
        if await db.fetchval(query, *args) or time.monotonic() > deadline:
            return bool(await db.fetchval(query, *args))
        await asyncio.sleep(0.2)


async def wait_equal(db: asyncpg.Pool, programme: Programme,
                     timeout: float = 60.0) -> tuple[Any, Any]:
    deadline = time.monotonic() + timeout
    while True:
        seen, expected = await coverage_and_ledger(db, programme)
        if seen == expected or time.monotonic() > deadline:
            return seen, expected
        await asyncio.sleep(0.2)


async def test_coverage_follows_the_ledger_and_an_event_sent_twice_is_applied_once(
    stack: ServiceProcesses, settings: Settings, db: asyncpg.Pool
) -> None:
    malang = load_programmes(settings.programmes_dir)["malang-2025"]
    events = [registration() for _ in range(8)]
    niks = [e.worker.nik for e in events]
    await publish(settings, TOPIC_REGISTRATIONS, [as_message(e) for e in events])
    assert await eventually(db, "SELECT count(*) >= 96 FROM ledger.contributions"
                                " WHERE nik = ANY($1)", niks, timeout=90)
    seen, expected = await wait_equal(db, malang)
    assert seen == expected
    assert seen["active_workers"] >= 8
    row = await db.fetchrow(
        "SELECT outbox_id, event, published_at FROM ledger.outbox WHERE programme = $1"
        " AND event LIKE '%' || $2 || '%' ORDER BY outbox_id DESC LIMIT 1", malang.id, niks[0])
    assert row is not None and row["published_at"] is not None

    # The same event twice more (a relay that crashed between the send and the mark), then
    # a marker event behind them on the same partition (the same key): once the marker is
    # applied, so are the repeats.
    marker = LedgerEvent(
        outbox_id=2**62 + random.randrange(2**40), programme=malang.id,
        recorded_at=datetime.now(UTC),
        bills_settled=[LedgerBillSettled(bill_id=uuid.uuid4(), period="2025-12",
                                         amount_idr=0)])
    key = malang.id.encode()
    await publish(settings, TOPIC_LEDGER, [(key, row["event"].encode()),
                                           (key, row["event"].encode()),
                                           (key, marker.model_dump_json().encode())])
    assert await eventually(db, "SELECT count(*) = 1 FROM coverage.applied"
                                " WHERE outbox_id = $1", marker.outbox_id, timeout=60)
    seen, expected = await wait_equal(db, malang, timeout=5)
    assert seen == expected


async def test_an_event_whose_sums_break_the_totals_is_a_dead_letter_and_stops_nothing(
    stack: ServiceProcesses, settings: Settings, db: asyncpg.Pool
) -> None:
    """Within the contract (each amount fits BIGINT) but not its sums: the projector keeps
    it as a dead letter, counts it handled, and applies what comes after it."""
    programme = f"poison-{uuid.uuid4().hex[:8]}"
    poison = LedgerEvent(
        outbox_id=2**62 + random.randrange(2**40), programme=programme,
        recorded_at=datetime.now(UTC),
        workers=[LedgerWorkerMonths(nik=unique_nik(), opd_code="DISNAKER",
                                    category="ojek_online", kecamatan="Klojen",
                                    amount_idr=2**62, held=["2026-01", "2026-02", "2026-03"])])
    after = LedgerEvent(
        outbox_id=poison.outbox_id + 1, programme=programme, recorded_at=datetime.now(UTC),
        bills_settled=[LedgerBillSettled(bill_id=uuid.uuid4(), period="2026-01",
                                         amount_idr=16_800)])
    value = poison.model_dump_json().encode()
    await publish(settings, TOPIC_LEDGER, [(programme.encode(), value),
                                           (programme.encode(), after.model_dump_json().encode())])
    assert await eventually(db, "SELECT count(*) = 1 FROM coverage.paid WHERE programme = $1"
                                " AND paid_idr = 16800", programme, timeout=60)
    dead = await db.fetchrow("SELECT service, topic, reason FROM ledger.dead_letters"
                             " WHERE value = $1", value)
    assert dead is not None and tuple(dead) == ("projector", TOPIC_LEDGER, "out_of_range")
    assert await db.fetchval("SELECT count(*) FROM coverage.applied WHERE outbox_id = $1",
                             poison.outbox_id) == 1
    assert await db.fetchval("SELECT count(*) FROM coverage.months WHERE programme = $1",
                             programme) == 0
