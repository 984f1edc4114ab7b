"""Batches of registrations through a fault stack, and how to judge the result: the ledger
exact (every contribution once, one accrual each), the projector's totals equal to it."""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass
from typing import Any

import asyncpg

from schemas.events import TOPIC_CONTRIBUTIONS, TOPIC_LEDGER, TOPIC_REGISTRATIONS
from services.runtime.settings import Settings
from services.runtime.stack import ServiceProcesses
from tests.support import faults
from tests.support.faults import (
    GROUPS,
    INPUT_TOPIC,
    FaultStack,
    LedgerTotals,
    Progress,
    committed_total,
    consumed_events,
    coverage_of,
    ledger_totals,
    publish_paced,
    record,
    wait_caught_up,
    wait_for,
)
from tests.support.workers import as_message, registration

PREMIUM = 16_800
EVERY_GROUP = [(GROUPS["validator"], TOPIC_REGISTRATIONS), (GROUPS["ledger"], TOPIC_CONTRIBUTIONS),
               (GROUPS["projector"], TOPIC_LEDGER)]

SENT_NIKS: list[str] = []  # every NIK a batch of this session carried


def batch(rng: random.Random, workers: int) -> tuple[list[tuple[bytes, bytes]], list[str]]:
    """``workers`` registrations, a few of them published twice (same event id)."""
    events = [registration() for _ in range(workers)]
    SENT_NIKS.extend(e.worker.nik for e in events)
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
    assert not any(lags.values()), \
        f"consumer groups never caught up: {lags}\n{what_the_services_say(stack)}"
    return await ledger_totals(url)


def what_the_services_say(stack: FaultStack, lines: int = 25) -> str:
    """For a failure message: each service process of the stack, alive or with its exit
    code, its /readyz answer, and the last lines of its log."""
    told = []
    for name, process in stack.services.processes.items():
        code = process.poll()
        state = "alive" if code is None else f"exited with code {code}"
        log = stack.services.log_dir / f"{name}.log"
        tail = log.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:] \
            if log.exists() else ["(no log)"]
        told.append(f"--- {name} (pid {process.pid}, {state}), /readyz "
                    f"{faults.readyz_body(stack.settings, name)}:\n" + "\n".join(tail))
    return "\n".join(told)


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


@dataclass(frozen=True)
class Mark:
    consumed: int  # events the running processes of a service handled since they started
    committed: int  # offsets its consumer group committed on its input topic


async def mark(instances: list[Settings], name: str) -> Mark:
    """Where a service stands; ``instances`` are the settings of each of its processes."""
    topic = INPUT_TOPIC[name]
    consumed = 0
    for settings in instances:
        consumed += await asyncio.to_thread(consumed_events, settings, name, topic)
    return Mark(consumed, await committed_total(instances[0], GROUPS[name], topic))


async def marks(instances: list[Settings]) -> dict[str, Mark]:
    return {name: await mark(instances, name) for name in INPUT_TOPIC}


@dataclass(frozen=True)
class Kill:
    pid: int
    uncommitted_in_group: int  # events the service's group handled and had not committed
    uncommitted_in_process: int  # records the killed process itself took and not committed
    victim: ServiceProcesses  # the stack whose process was killed


async def kill_holding_work(services: ServiceProcesses | list[ServiceProcesses],
                            instances: list[Settings], name: str, since: dict[str, Mark], *,
                            restart: bool, wait: float = 3.0) -> Kill:
    """kill -9 a process of service ``name`` while it holds work it has not committed: once
    it took records beyond what its group committed on the partitions it holds
    (iuran_consumer_position against the committed offsets, read while the process is
    stopped with SIGSTOP, so that no commit falls between the reading and the kill; it
    continues with SIGCONT when it held nothing), waiting up to ``wait`` s.

    ``services`` is one stack, or several in order of preference (two instances of a
    service): the first of them whose process holds work is killed. An instance whose
    partitions have no work left (say, its share of the batch is done) cannot hold any, and
    one whose partitions are fed by a validator just killed idles until that group has
    moved them (about a session timeout). When none holds work by ``wait``, the first is
    killed regardless (and the caller's assertion on the figures tells).

    Both figures are measured across the kill: what was taken up to just before it, minus
    the offsets committed once the process was dead (its partitions stay with it until the
    group notices, so nothing else commits them in between). ``uncommitted_in_group``
    counts events handled since ``since`` by every instance (``instances``)."""
    stacks = services if isinstance(services, list) else [services]
    topic, group = INPUT_TOPIC[name], GROUPS[name]
    async with faults.committed_reader(stacks[0].settings, group, topic) as committed_now:
        deadline = time.monotonic() + wait
        chosen: ServiceProcesses | None = None
        taken: dict[int, int] | None = None
        while chosen is None:
            consumed = sum([await asyncio.to_thread(consumed_events, s, name, topic)
                            for s in instances])
            for stack in stacks:
                taken = await faults.stopped_holding_work(
                    stack.settings, name, topic, stack.processes[name].pid, committed_now)
                if taken is not None:
                    chosen = stack
                    break
            if chosen is None and time.monotonic() > deadline:
                chosen = stacks[0]
                taken = await asyncio.to_thread(faults.consumer_positions, chosen.settings,
                                                name, topic)
            await asyncio.sleep(0 if chosen else 0.02)
        pid = kill(chosen, name, restart=False)  # SIGKILL ends a stopped process too
        committed = await committed_now()
    if restart:
        chosen.start(name)
    start = since[name]
    in_group = (consumed - start.consumed) - (sum(committed.values()) - start.committed)
    in_process = faults.uncommitted(taken or {}, committed)
    return Kill(pid, in_group, in_process, chosen)


# The names and the phone number (in its notations) that every batch's workers carry.
PERSONAL_DATA = ["Budi Santoso", "Siti Rahayu", "0812-3456-7890", "081234567890",
                 "6281234567890", "+6281234567890"]


async def assert_logs_carry_no_personal_data(stack: FaultStack) -> None:
    """The service logs of a fault stack (kills, outages, restarts and all) hold no full
    NIK, name or phone number of any batch; run alone, a small batch goes through first, so
    that there is always something to look for."""
    if not SENT_NIKS:
        before = await settled(stack, 0)
        messages, niks = batch(random.Random(7), 20)
        await publish_paced(stack.settings, TOPIC_REGISTRATIONS, messages, chunks=1, pause=0,
                            progress=Progress())
        await settled(stack, before.contributions + len(niks) * 12)
    logs = stack.logs()
    assert logs.strip(), "no service logs to scan"
    found = sorted({s for s in [*SENT_NIKS, *PERSONAL_DATA] if s in logs})
    record("fault.logs-scanned", log_chars=len(logs), niks=len(SENT_NIKS), leaked=len(found))
    assert not found, f"the fault stack's logs carry personal data: {found[:10]}"
