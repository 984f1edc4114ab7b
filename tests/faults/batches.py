"""Batches of registrations through a fault stack, and how to judge the result: the ledger
exact (every contribution once, one accrual each), the projector's totals equal to it."""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

import asyncpg

from schemas.events import TOPIC_CONTRIBUTIONS, TOPIC_REGISTRATIONS
from services.runtime.stack import ServiceProcesses
from tests.support.faults import (
    GROUPS,
    FaultStack,
    LedgerTotals,
    coverage_of,
    ledger_totals,
    wait_caught_up,
    wait_for,
)
from tests.support.workers import as_message, registration

PREMIUM = 16_800
EVERY_GROUP = [(GROUPS["validator"], TOPIC_REGISTRATIONS), (GROUPS["ledger"], TOPIC_CONTRIBUTIONS),
               (GROUPS["projector"], TOPIC_CONTRIBUTIONS)]

def batch(rng: random.Random, workers: int) -> tuple[list[tuple[bytes, bytes]], list[str]]:
    """``workers`` registrations, a few of them published twice (same event id)."""
    events = [registration() for _ in range(workers)]
    messages = [as_message(e) for e in events]
    messages += rng.sample(messages, k=max(1, workers // 20))
    rng.shuffle(messages)
    return messages, [e.worker.nik for e in events]


async def settled(stack: FaultStack, expected: int, within: float = 120.0) -> LedgerTotals:
    """Wait until the ledger holds ``expected`` contributions, or until nothing is left in
    flight (every consumer group committed to the end of its topic and the count stood
    still for 5 s), then wait for the groups to catch up and return the ledger's totals."""
    url = stack.database_url
    deadline = time.monotonic() + within
    totals = await ledger_totals(url)
    changed = time.monotonic()
    while totals.contributions < expected and time.monotonic() < deadline:
        await asyncio.sleep(0.5)
        now = await ledger_totals(url)
        if now != totals:
            totals, changed = now, time.monotonic()
        elif time.monotonic() - changed > 5:
            lags = await wait_caught_up(stack.settings, EVERY_GROUP, within=0)
            if not any(lags.values()):
                break  # nothing in flight any more: what is missing is lost
            changed = time.monotonic()
    lags = await wait_caught_up(stack.settings, EVERY_GROUP, within=90)
    assert not any(lags.values()), f"consumer groups never caught up: {lags}"
    return await ledger_totals(url)


async def projector_agrees(settings: Any, totals: LedgerTotals,
                           within: float = 90.0) -> dict[str, Any]:
    """The projector's snapshot once it equals the ledger (or the last one seen)."""

    async def snapshot() -> dict[str, Any] | None:
        return await asyncio.to_thread(coverage_of, settings)

    async def agrees() -> bool:
        seen = await snapshot()
        return bool(seen) and (seen["contributions_booked"], seen["active_workers"]) == (
            totals.contributions, totals.workers)

    await wait_for(agrees, within=within, interval=0.5)
    return await snapshot() or {}


def verdict(expected: int, totals: LedgerTotals, projected: dict[str, Any]) -> dict[str, int]:
    return {
        "lost": max(expected - totals.contributions, 0),
        "doubled": max(totals.contributions - expected, 0)
        + abs(totals.accruals - totals.contributions)
        + max(projected.get("contributions_booked", 0) - totals.contributions, 0),
        "projector_behind": max(totals.contributions - projected.get("contributions_booked", 0),
                                0),
    }


def assert_ledger_exact(expected: int, totals: LedgerTotals) -> None:
    assert totals.contributions == expected, \
        f"{expected - totals.contributions} contribution(s) lost"
    assert totals.distinct_months == totals.contributions
    assert totals.accruals == totals.contributions, "an accrual booked twice or not at all"
    assert totals.amount_idr == totals.contributions * PREMIUM


def assert_projector_right(totals: LedgerTotals, projected: dict[str, Any]) -> None:
    booked, workers = projected.get("contributions_booked"), projected.get("active_workers")
    assert booked == totals.contributions, f"projector {booked} != ledger {totals.contributions}"
    assert workers == totals.workers, f"projector {workers} workers != ledger {totals.workers}"


async def cancelled(url: str, niks: list[str]) -> int:
    connection = await asyncpg.connect(url)
    try:
        return int(await connection.fetchval(
            "SELECT count(*) FROM ledger.cancellations x JOIN ledger.contributions c "
            "USING (contribution_id) WHERE c.nik = ANY($1::text[])", niks))
    finally:
        await connection.close()


def kill(services: ServiceProcesses, name: str, *, restart: bool) -> int:
    pid = services.processes[name].pid
    services.stop(name, kill=True)
    if restart:
        services.start(name)  # as `iuran up` does: a supervisor starts it again at once
    return pid


