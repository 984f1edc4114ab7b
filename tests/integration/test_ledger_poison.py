"""Poison records on the running ledger (real broker, service processes, real PostgreSQL):
a record the ledger cannot book or apply never stops it. Rejected at the edge when the
contract can tell, else found within its batch and kept as a dead letter with its raw bytes
and offset; the good records around it are booked, and the ledger process never restarts."""

from __future__ import annotations

import json
import uuid

import asyncpg
import pytest

from schemas.events import TOPIC_CONTRIBUTIONS, TOPIC_PAYMENTS
from services.domain.programme import load_programmes
from services.runtime.settings import Settings
from services.runtime.stack import ServiceProcesses
from tests.support import faults
from tests.support.kafka import publish
from tests.support.ledger import programme_copy, schedule
from tests.support.workers import unique_nik

pytestmark = pytest.mark.integration

PERIODS = [f"2026-{m:02d}" for m in range(1, 13)]


def _payment(amount: int, programme: str | None = None) -> tuple[bytes, bytes]:
    programme = programme or f"unbilled-{uuid.uuid4().hex[:8]}"
    value = {"payment_id": str(uuid.uuid4()), "programme": programme, "period": "2025-12",
             "amount_idr": amount, "reference": f"BPJS-{uuid.uuid4().hex[:10]}",
             "paid_at": "2025-12-10T10:00:00+07:00"}
    return programme.encode(), json.dumps(value).encode()


def _schedule(settings: Settings, nik: str, amount: int | None = None) -> tuple[bytes, bytes]:
    programme = load_programmes(settings.programmes_dir)["malang-2025"]
    if amount is not None:
        # A programme the ledger has no premium nor allocation for (a configured one refuses
        # a contribution that is not its premium before SQL sees it): held, whose sum breaks.
        programme = programme_copy(programme, budget_idr=0)
    body = json.loads(schedule(programme, nik, PERIODS, event=uuid.uuid4().hex)
                      .model_dump_json())
    if amount is not None:  # within the contract (<= 2**63-1 each), but not their sum
        for due in body["contributions"]:
            due["amount_idr"], due["components"] = amount, {"jkk": amount, "jkm": 0}
    return nik.encode(), json.dumps(body).encode()


async def _booked(db: asyncpg.Pool, nik: str) -> int:
    return int(await db.fetchval(
        "SELECT count(*) FROM ledger.contributions WHERE nik = $1", nik))


def _ledger_pid(stack: ServiceProcesses) -> int:
    process = stack.processes["ledger"]
    assert process.poll() is None, "the ledger process exited"
    return process.pid


async def test_a_payment_out_of_bigint_range_does_not_stop_the_ledger(
    stack: ServiceProcesses, settings: Settings, db: asyncpg.Pool
) -> None:
    pid = _ledger_pid(stack)
    poison_key, poison = _payment(10**20)
    good_key, good = _payment(16_800)
    nik = unique_nik()
    await publish(settings, TOPIC_PAYMENTS, [(poison_key, poison), (good_key, good)])
    await publish(settings, TOPIC_CONTRIBUTIONS, [_schedule(settings, nik)])

    good_id = json.loads(good)["payment_id"]
    recorded = await faults.wait_for(lambda: db.fetchval(
        "SELECT count(*) FROM ledger.payments WHERE payment_id = $1::uuid", good_id), within=60)
    booked = await faults.wait_for(lambda: _booked(db, nik), within=60)
    dead = await db.fetchval("SELECT reason FROM ledger.dead_letters WHERE value = $1",
                             poison)
    assert _ledger_pid(stack) == pid, "the ledger restarted"
    assert (recorded, booked) == (1, 12), "the records after the poison were not all handled"
    # a payment record that cannot be taken is a dead letter of the payments topic
    assert dead in ("malformed_payment", "out_of_range"), "the poison payment ended nowhere"


async def test_a_schedule_the_database_refuses_is_a_dead_letter_and_its_batch_is_booked(
    stack: ServiceProcesses, settings: Settings, db: asyncpg.Pool
) -> None:
    pid = _ledger_pid(stack)
    before, after = unique_nik(), unique_nik()
    poison_nik = unique_nik()
    poison_key, poison = _schedule(settings, poison_nik, amount=2**62)
    # One key: one partition, so the three records arrive in order, usually in one batch.
    key = before.encode()
    await publish(settings, TOPIC_CONTRIBUTIONS, [
        (key, _schedule(settings, before)[1]), (key, poison), (key, _schedule(settings, after)[1])])

    booked = await faults.wait_for(
        lambda: db.fetchval("SELECT count(*) FROM ledger.contributions WHERE nik = ANY($1)",
                            [before, after]), within=60)
    dead = await faults.wait_for(lambda: db.fetchrow(
        """SELECT service, topic, reason, detail, value, key FROM ledger.dead_letters
            WHERE value = $1""", poison), within=30)
    assert _ledger_pid(stack) == pid, "the ledger restarted"
    assert booked == 24
    assert dead is not None, "the poison schedule is not a dead letter"
    assert (dead["service"], dead["topic"], dead["reason"], dead["key"]) == (
        "ledger", TOPIC_CONTRIBUTIONS, "out_of_range", key)
    assert await _booked(db, poison_nik) == 0
    assert await db.fetchval("SELECT count(*) FROM ledger.held_contributions WHERE nik = $1",
                             poison_nik) == 0
    shown = await db.fetchval(
        "SELECT count(*) FROM finance.dead_letters WHERE value_text = $1", poison.decode())
    assert shown == 1
