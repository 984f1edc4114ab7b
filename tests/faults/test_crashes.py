"""Crashes on a stack of this module's own: kill -9 of each service at random moments of a
batch, the whole registrations topic replayed from offset zero, and two instances of each
service sharing partitions with one of them killed. After each, every contribution is
booked exactly once and the projector's totals equal the ledger's.

Seeds are printed (and written to faults-results.jsonl): replay one iteration with
``IURAN_CHAOS_SEED=<seed> IURAN_CHAOS_ITERATIONS=1``.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Iterator

import pytest

from schemas.events import TOPIC_REGISTRATIONS
from services.cli.service import PIPELINE
from tests.faults.batches import (
    EVERY_GROUP,
    assert_ledger_exact,
    assert_logs_carry_no_personal_data,
    assert_projector_right,
    batch,
    cancelled,
    kill_holding_work,
    marks,
    projector_agrees,
    settled,
    verdict,
)
from tests.support import faults
from tests.support.faults import (
    GROUPS,
    FaultStack,
    Progress,
    chaos_iterations,
    chaos_seeds,
    coverage_of,
    ledger_checksum,
    ledger_totals,
    metric_value,
    metrics_text,
    publish_paced,
    record,
    wait_caught_up,
    wait_for,
)
from tests.support.workers import as_message, deregistration

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

ITERATIONS = chaos_iterations()
SEEDS = chaos_seeds(ITERATIONS)
# Registrations per batch (12 contributions each); make chaos may raise it. Keep the
# module's total under the programme's budget (about 26,000 workers).
WORKERS = faults.env_int("IURAN_CHAOS_WORKERS", 300)


@pytest.fixture(scope="module")
def crash_stack() -> Iterator[FaultStack]:
    with faults.fault_stack("crashes") as stack:
        yield stack


@pytest.mark.parametrize("seed", SEEDS, ids=[f"seed={s}" for s in SEEDS])
async def test_kill_9_of_every_service_at_random_moments_books_everything_once(
    crash_stack: FaultStack, seed: int
) -> None:
    stack, settings = crash_stack, crash_stack.settings
    rng = random.Random(seed)
    before = await settled(stack, 0)
    projected_before = coverage_of(settings) or {}
    messages, niks = batch(rng, WORKERS)
    in_batch = len(niks) * 12
    expected = before.contributions + in_batch
    chunks, pause = 12, 0.3
    window = chunks * pause  # the batch is still being published until then
    # Random moments, the validator's last: the ledger and the projector hold work only
    # while it feeds them, and once it dies the rest of the batch reaches them in one burst
    # after its restart, too short for two kills in turn.
    downstream = [name for name in PIPELINE if name != "validator"]
    plan = list(zip(sorted(rng.uniform(0.05, 0.95) * window for _ in PIPELINE),
                    [*rng.sample(downstream, k=len(downstream)), "validator"], strict=True))

    since = await marks([settings])
    started = time.monotonic()
    progress = Progress()
    struck = asyncio.Event()
    sender = asyncio.create_task(publish_paced(settings, TOPIC_REGISTRATIONS, messages,
                                               chunks=chunks, pause=pause, progress=progress,
                                               trickle_until=struck))
    kills = []
    try:
        for moment, name in plan:
            await asyncio.sleep(max(0.0, started + moment - time.monotonic()))
            booked = (await ledger_totals(stack.database_url)).contributions - before.contributions
            if name == "projector":
                seen = await asyncio.to_thread(coverage_of, settings)
                done = (seen or {}).get("contributions_booked", 0) \
                    - projected_before.get("contributions_booked", 0)
            else:
                done = booked
            killed = await kill_holding_work(stack.services, [settings], name, since,
                                             restart=True, wait=60.0)
            kills.append(record("fault.kill", seed=seed, service=name, pid=killed.pid,
                                at_seconds=round(time.monotonic() - started, 2),
                                published=progress.published, of=len(messages),
                                booked=booked, in_flight=in_batch - done,
                                uncommitted_in_process=killed.uncommitted_in_process,
                                handled_uncommitted=killed.uncommitted_in_group))
    finally:
        struck.set()  # the rest of the batch goes out
    await sender
    totals = await settled(stack, expected)
    booked_after = round(time.monotonic() - started, 1)
    projected = await projector_agrees(settings, totals)
    figures = verdict(expected, totals, projected)
    record("fault.kill-iteration", seed=seed, workers=len(niks), messages=len(messages),
           expected=expected, booked=totals.contributions,
           projector=projected.get("contributions_booked"), kills=len(kills),
           settled_seconds=booked_after, seconds=round(time.monotonic() - started, 1),
           **figures)
    assert all(k["in_flight"] > 0 for k in kills), "a kill struck after the batch was done"
    idle = [k["service"] for k in kills if k["uncommitted_in_process"] <= 0]
    assert not idle, f"killed with no uncommitted work in the process: {idle}"
    if totals.contributions != expected:
        record("fault.kill-lost", seed=seed,
               **await faults.where_are(settings, stack.database_url, niks))
    assert_ledger_exact(expected, totals)
    assert_projector_right(totals, projected)
    mine = await ledger_totals(stack.database_url, niks)
    assert (mine.contributions, mine.workers) == (in_batch, len(niks))


async def test_replaying_the_registrations_topic_from_zero_changes_nothing(
    crash_stack: FaultStack,
) -> None:
    """Every consumer group rewound to offset zero: the validator reads every registration
    again, the ledger every schedule, the projector folds everything again; the ledger's
    rows are the same, byte for byte, and the projector's totals equal the ledger's."""
    stack, settings = crash_stack, crash_stack.settings
    before = await settled(stack, 0)
    messages, niks = batch(random.Random(0), 300)
    await publish_paced(settings, TOPIC_REGISTRATIONS, messages, chunks=1, pause=0,
                        progress=Progress())
    totals = await settled(stack, before.contributions + len(niks) * 12)
    checksum_before = await ledger_checksum(stack.database_url)

    started = time.monotonic()
    for name in PIPELINE:
        stack.services.stop(name)
    try:
        rewound = dict(zip(PIPELINE, await asyncio.gather(
            *(faults.rewind_group(settings, group, topic) for group, topic in EVERY_GROUP)),
            strict=True))
        registrations = sum((await faults.end_offsets(settings, TOPIC_REGISTRATIONS)).values())
    finally:
        stack.services.start()
        stack.services.wait_ready(timeout=120)
    lags = await wait_caught_up(settings, EVERY_GROUP, within=120)
    assert not any(lags.values()), f"the replay never finished: {lags}"
    replayed = metric_value(metrics_text(settings, "validator"), "iuran_events_consumed_total")
    ledger_read = metric_value(metrics_text(settings, "ledger"), "iuran_events_consumed_total")
    checksum_after = await ledger_checksum(stack.database_url)
    after = await ledger_totals(stack.database_url)
    projected = await projector_agrees(settings, after)
    record("fault.replay", registrations_in_topic=registrations,
           validator_events_replayed=int(replayed), ledger_schedules_read=int(ledger_read),
           committed_before_rewind={k: sum(v.values()) for k, v in rewound.items()},
           contributions=checksum_before[1], transfers=checksum_before[2],
           ledger_unchanged=checksum_after == checksum_before,
           projector=projected.get("contributions_booked"),
           seconds=round(time.monotonic() - started, 1),
           lost=max(totals.contributions - after.contributions, 0),
           doubled=max(after.contributions - totals.contributions, 0)
           + max(checksum_after[2] - checksum_before[2], 0))
    # The rewind to 0 and the groups' commits to the end show the replay; the counters are
    # figures (they count events handled by this process, a restart started them at 0).
    assert replayed > 0 and ledger_read > 0, "nothing was read again"
    assert checksum_after == checksum_before, "the replay changed the ledger"
    # a replay folds every schedule again: the projector's totals are whole once more
    assert (projected.get("contributions_booked"), projected.get("active_workers")) == (
        after.contributions, after.workers)


async def test_a_restarted_validator_and_projector_forget_nothing(
    crash_stack: FaultStack,
) -> None:
    """After a clean restart the validator still knows who is enrolled (a deregistration of
    every worker of a batch reverses their remaining months, none is refused) and the
    projector's totals still equal the ledger's."""
    stack, settings = crash_stack, crash_stack.settings
    before = await settled(stack, 0)
    messages, niks = batch(random.Random(2), 300)
    await publish_paced(settings, TOPIC_REGISTRATIONS, messages, chunks=1, pause=0,
                        progress=Progress())
    totals = await settled(stack, before.contributions + len(niks) * 12)
    for name in ("validator", "projector"):
        stack.services.stop(name)  # a clean stop, not even a crash
        stack.services.start(name)
    stack.services.wait_ready(timeout=120)
    projected = await projector_agrees(settings, totals, within=20)
    stops = [as_message(deregistration(nik, "2026-06")) for nik in niks]
    await publish_paced(settings, TOPIC_REGISTRATIONS, stops, chunks=1, pause=0,
                        progress=Progress())
    lags = await wait_caught_up(stack.settings, EVERY_GROUP, within=90)
    assert not any(lags.values()), f"consumer groups never caught up: {lags}"
    reversed_months = await cancelled(stack.database_url, niks)
    record("fault.clean-restart", workers=len(niks), ledger=totals.contributions,
           projector=projected.get("contributions_booked"),
           projector_lost=totals.contributions - projected.get("contributions_booked", 0),
           expected_reversals=len(niks) * 6, reversed=reversed_months,
           reversals_lost=len(niks) * 6 - reversed_months)
    assert (projected.get("contributions_booked"), projected.get("active_workers")) == (
        totals.contributions, totals.workers), "the projector forgot workers in a restart"
    assert reversed_months == len(niks) * 6, \
        f"{len(niks) * 6 - reversed_months} month(s) stay booked after a deregistration"


async def test_two_instances_of_each_service_lose_and_double_nothing_when_one_dies(
    crash_stack: FaultStack,
) -> None:
    stack, settings = crash_stack, crash_stack.settings
    seed = SEEDS[0] + 1_000_000
    rng = random.Random(seed)
    second = stack.second_instances("second")
    second.start()
    try:
        second.wait_ready(timeout=120)

        async def both_members() -> bool:
            members = [await faults.group_members(settings, GROUPS[n]) for n in PIPELINE]
            return all(m >= 2 for m in members)

        assert await wait_for(both_members, within=60), "the second instances never joined"
        # A few workers through both instances first: every group has settled its
        # partitions among its members before the batch, so that no kill falls in a
        # rebalance, when no instance holds work.
        warm_up, warm_niks = batch(random.Random(seed + 1), 20)
        await publish_paced(settings, TOPIC_REGISTRATIONS, warm_up, chunks=1, pause=0,
                            progress=Progress())
        before = await settled(stack, (await settled(stack, 0)).contributions
                               + len(warm_niks) * 12)
        instances = [settings, second.settings]
        since = await marks(instances)
        messages, niks = batch(rng, WORKERS)
        in_batch = len(niks) * 12
        expected = before.contributions + in_batch
        chunks, pause = 12, 0.3
        started = time.monotonic()
        progress = Progress()
        struck = asyncio.Event()
        sender = asyncio.create_task(publish_paced(
            settings, TOPIC_REGISTRATIONS, messages, chunks=chunks, pause=pause,
            progress=progress, trickle_until=struck))
        # One instance of each service dies for good, at a random moment of the batch.
        plan = sorted((rng.uniform(0.1, 0.9) * chunks * pause, name,
                       rng.choice(["first", "second"])) for name in PIPELINE)
        survivors = {}
        kills = []
        try:
            for moment, name, which in plan:
                await asyncio.sleep(max(0.0, started + moment - time.monotonic()))
                booked = (await ledger_totals(stack.database_url)).contributions \
                    - before.contributions
                # the instance the seed picked dies, or the other when only that one holds work
                preferred = [stack.services, second] if which == "first" else [second,
                                                                               stack.services]
                killed = await kill_holding_work(preferred, instances, name, since,
                                                 restart=False, wait=30.0)
                which = "first" if killed.victim is stack.services else "second"
                survivors[name] = second if which == "first" else stack.services
                kills.append(record(
                    "fault.rebalance-kill", seed=seed, service=name, instance=which, pid=killed.pid,
                    at_seconds=round(time.monotonic() - started, 2),
                    published=progress.published, of=len(messages), booked=booked,
                    in_flight=in_batch - booked, uncommitted_in_group=killed.uncommitted_in_group,
                    uncommitted_in_process=killed.uncommitted_in_process))
        finally:
            struck.set()  # the rest of the batch goes out
        await sender
        idle = [k["service"] for k in kills if k["uncommitted_in_process"] <= 0]
        assert not idle, f"an instance killed with no uncommitted work of its own: {idle}"
        totals = await settled(stack, expected)
        # coverage counts no cancelled month (an earlier test of the module deregisters)
        covered = await ledger_totals(stack.database_url, covered_only=True)
        projected = await projector_agrees(survivors["projector"].settings, covered)
        figures = verdict(expected, totals, projected)
        record("fault.rebalance", seed=seed, workers=len(niks), expected=expected,
               booked=totals.contributions, projector=projected.get("contributions_booked"),
               seconds=round(time.monotonic() - started, 1), **figures)
        if totals.contributions != expected:
            record("fault.rebalance-lost", seed=seed,
                   **await faults.where_are(settings, stack.database_url, niks))
        assert_ledger_exact(expected, totals)
        assert_projector_right(covered, projected)
    finally:
        second.stop()
        stack.services.start_missing()  # an instance of this stack killed for good
        stack.services.restart_dead()
        stack.services.wait_ready(timeout=120)


async def test_the_logs_of_this_stack_carry_no_personal_data(crash_stack: FaultStack) -> None:
    await assert_logs_carry_no_personal_data(crash_stack)
