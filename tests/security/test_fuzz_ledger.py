"""Records that pass a naive reading of the contract and can fail in SQL, sent to the
running ledger: huge amounts, zero and negative amounts, components that do not add up,
NUL characters in text, NIKs that are not 16 digits, an unknown programme in a payment, and
a schedule whose amounts are each within BIGINT but whose sum is not. Each must end
somewhere a person can see it (the rejected topic with a code, a dead letter, or a
discrepancy), the ledger process must never restart, and the valid records sent after them
must all be booked."""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import Callable
from typing import Any

import asyncpg
import pytest

from schemas.events import (
    INT64_MAX,
    TOPIC_CONTRIBUTIONS,
    TOPIC_PAYMENTS,
    TOPIC_REJECTED,
    RejectedEvent,
)
from services.domain.programme import load_programmes
from services.runtime.settings import Settings
from services.runtime.stack import ServiceProcesses
from tests.security.test_fuzz import publish_cases
from tests.support import faults
from tests.support.kafka import collect
from tests.support.ledger import programme_copy, schedule
from tests.support.workers import unique_nik

pytestmark = pytest.mark.integration

PERIODS = [f"2026-{m:02d}" for m in range(1, 13)]
Change = Callable[[dict[str, Any]], None]


def _amounts(amount: int, jkk: int, jkm: int, months: int = 1) -> Change:
    def change(body: dict[str, Any]) -> None:
        for due in body["contributions"][:months]:
            due["amount_idr"], due["components"] = amount, {"jkk": jkk, "jkm": jkm}
    return change


def _set(field: str, value: Any) -> Change:
    def change(body: dict[str, Any]) -> None:
        body[field] = value
    return change


SCHEDULE_CASES: dict[str, Change] = {
    "amount_10e20": _amounts(10**20, 10**20, 0),
    "amount_over_bigint": _amounts(INT64_MAX + 1, INT64_MAX, 1),
    "amount_zero": _amounts(0, 0, 0),
    "amount_negative": _amounts(-16_800, -16_800, 0),
    "components_short": _amounts(16_800, 10_000, 1_000),
    "component_over_bigint": _amounts(16_800, INT64_MAX + 1, -(INT64_MAX + 1 - 16_800)),
    "nul_opd_code": _set("opd_code", "DISNA\x00KER"),
    "nul_kecamatan": _set("kecamatan", "Klojen\x00"),
    "nul_funding_source": _set("funding_source", "\x00"),
    "nul_programme": _set("programme", "malang\x00-2025"),
    "nik_letters": _set("nik", "35730145079000ab"),
    "nik_short": _set("nik", "357301450790001"),
    # Each month within BIGINT, twelve of them are not: passes the contract, not SQL.
    "sum_over_bigint": _amounts(2**62, 2**62, 0, months=12),
}


def _schedule_case(settings: Settings, change: Change) -> tuple[str, bytes]:
    # A programme of its own (no allocation): whatever might be held blocks nobody else.
    base = load_programmes(settings.programmes_dir)["malang-2025"]
    programme = programme_copy(base, budget_idr=0)
    nik = unique_nik()
    body = json.loads(schedule(programme, nik, PERIODS, event=uuid.uuid4().hex)
                      .model_dump_json())
    change(body)
    return nik, json.dumps(body).encode()


def _payment(**change: Any) -> dict[str, Any]:
    return {"payment_id": str(uuid.uuid4()), "programme": f"unbilled-{uuid.uuid4().hex[:8]}",
            "period": "2025-12", "amount_idr": 16_800,
            "reference": f"BPJS-{uuid.uuid4().hex[:10]}",
            "paid_at": "2025-12-10T10:00:00+07:00", **change}


PAYMENT_CASES: dict[str, dict[str, Any]] = {
    "amount_10e20": {"amount_idr": 10**20},
    "amount_over_bigint": {"amount_idr": INT64_MAX + 1},
    "amount_zero": {"amount_idr": 0},
    "nul_reference": {"reference": "BPJS\x00-1"},
    "nul_programme": {"programme": "malang-2025\x00"},
    "nul_reference_at_limit": {"reference": "R" * 99 + "\x00"},
    "unknown_programme": {"programme": "no-such-programme"},
}


async def _visible(db: asyncpg.Pool, topic: str,
                   where: dict[tuple[int, int], str]) -> dict[tuple[int, int], str]:
    rows = await db.fetch(
        """SELECT partition, "offset", reason FROM ledger.dead_letters
            WHERE service = 'ledger' AND topic = $1""", topic)
    return {(r["partition"], r["offset"]): f"dead_letter:{r['reason']}" for r in rows
            if (r["partition"], r["offset"]) in where}


async def test_poison_records_end_visible_and_never_restart_the_ledger(
    stack: ServiceProcesses, settings: Settings, db: asyncpg.Pool
) -> None:
    ledger = stack.processes["ledger"]
    pid = ledger.pid
    # One key per topic: one partition, so the good records come after every poison one.
    key = unique_nik().encode()
    poison_schedules = {name: _schedule_case(settings, change)
                        for name, change in SCHEDULE_CASES.items()}
    poison_payments = {name: _payment(**change) for name, change in PAYMENT_CASES.items()}
    base = load_programmes(settings.programmes_dir)["malang-2025"]
    good_niks = [unique_nik() for _ in range(3)]
    good_schedules = [schedule(base, nik, PERIODS, event=uuid.uuid4().hex).model_dump_json()
                      .encode() for nik in good_niks]
    good_payments = [_payment() for _ in range(2)]

    placed_schedules = await publish_cases(settings, TOPIC_CONTRIBUTIONS, [
        (name, key, value) for name, (_, value) in poison_schedules.items()])
    placed_payments = await publish_cases(settings, TOPIC_PAYMENTS, [
        (name, key, json.dumps(p).encode()) for name, p in poison_payments.items()])
    await publish_cases(settings, TOPIC_CONTRIBUTIONS,
                        [("good", key, value) for value in good_schedules])
    await publish_cases(settings, TOPIC_PAYMENTS,
                        [("good", key, json.dumps(p).encode()) for p in good_payments])

    async def good_done() -> bool:
        booked = await db.fetchval(
            "SELECT count(*) FROM ledger.contributions WHERE nik = ANY($1::text[])", good_niks)
        paid = await db.fetchval(
            "SELECT count(*) FROM ledger.payments WHERE payment_id = ANY($1::uuid[])",
            [p["payment_id"] for p in good_payments])
        return booked == 12 * len(good_niks) and paid == len(good_payments)

    assert await faults.wait_for(good_done, within=90), "good records after the poison"

    # Where each poison record ended: the rejected topic, a dead letter, or (a payment
    # for a programme with no bill) a discrepancy.
    ended: dict[str, dict[tuple[int, int], str]] = {}
    for topic, placed in ((TOPIC_CONTRIBUTIONS, placed_schedules),
                          (TOPIC_PAYMENTS, placed_payments)):
        where = {spot: case[0] for spot, case in placed.items()}
        found = await _visible(db, topic, where)

        def ours(record: Any, topic: str = topic, where: dict[Any, str] = where) -> bool:
            event = RejectedEvent.model_validate_json(record.value)
            return event.source_topic == topic and (event.partition, event.offset) in where

        rejected = await collect(settings, TOPIC_REJECTED, ours,
                                 want=len(where) - len(found), timeout=30)
        for record in rejected:
            event = RejectedEvent.model_validate_json(record.value)
            found[(event.partition, event.offset)] = "rejected:" + event.errors[0].code
        ended[topic] = found
    for name, payment in poison_payments.items():
        spot = next(s for s, case in placed_payments.items() if case[0] == name)
        outcome = await db.fetchval(
            "SELECT kind FROM ledger.discrepancies WHERE payment_id = $1::uuid",
            payment["payment_id"])
        if outcome is not None:
            ended[TOPIC_PAYMENTS].setdefault(spot, f"discrepancy:{outcome}")

    poison_niks = [nik for nik, _ in poison_schedules.values()]
    poison_booked = await db.fetchval(
        "SELECT count(*) FROM ledger.contributions WHERE nik = ANY($1::text[])", poison_niks)
    restarted = ledger.poll() is not None or stack.processes["ledger"].pid != pid
    outcomes = {topic: dict(Counter(v.split(":")[0] for v in found.values()))
                for topic, found in ended.items()}
    faults.record("fuzz.ledger_poison", tried={TOPIC_CONTRIBUTIONS: len(placed_schedules),
                                               TOPIC_PAYMENTS: len(placed_payments)},
                  outcomes=outcomes, ledger_restarts=int(restarted),
                  good_booked=f"{len(good_niks)} schedules, {len(good_payments)} payments",
                  poison_contributions_booked=poison_booked)

    missing = [(topic, name) for topic, placed in ((TOPIC_CONTRIBUTIONS, placed_schedules),
                                                   (TOPIC_PAYMENTS, placed_payments))
               for spot, (name, _, _) in placed.items() if spot not in ended[topic]]
    assert not missing, f"poison records that ended nowhere visible: {missing}"
    assert not restarted, "the ledger process restarted"
    assert poison_booked == 0
    by_name = {name: ended[TOPIC_CONTRIBUTIONS][spot]
               for spot, (name, _, _) in placed_schedules.items()}
    assert by_name.pop("sum_over_bigint") == "dead_letter:out_of_range"
    assert set(by_name.values()) == {"rejected:malformed_schedule"}, by_name
    by_name = {name: ended[TOPIC_PAYMENTS][spot]
               for spot, (name, _, _) in placed_payments.items()}
    assert by_name.pop("unknown_programme") == "discrepancy:unknown_bill"
    assert set(by_name.values()) == {"dead_letter:malformed_payment"}, by_name
