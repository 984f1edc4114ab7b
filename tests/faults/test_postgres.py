"""PostgreSQL stopped and started again in the middle of a batch, and writes the database
refuses: the ledger reports not ready, retries with backoff, keeps its place in the topic,
and books every contribution exactly once when the database is back.

The module has a stack of its own with an embedded PostgreSQL that it stops and starts
(also when the rest of the suite runs against IURAN_DATABASE_URL), and its services connect
as a role that may only select and insert, so that a REVOKE bites.
"""

from __future__ import annotations

import asyncio
import random
import re
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import asyncpg
import pytest

from schemas.events import TOPIC_CONTRIBUTIONS, TOPIC_REGISTRATIONS
from services.domain.programme import load_programmes
from services.domain.schedule import covered_periods, due_schedule
from tests.faults.batches import (
    SENT_NIKS,
    assert_ledger_exact,
    assert_logs_carry_no_personal_data,
    batch,
    mark,
    settled,
    verdict,
)
from tests.support import faults
from tests.support.faults import (
    GROUPS,
    PROGRAMME,
    FaultStack,
    Progress,
    coverage_of,
    ledger_totals,
    metric_value,
    metrics_text,
    publish_paced,
    readyz_body,
    record,
    wait_caught_up,
    wait_for,
)
from tests.support.workers import registration

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

ROLE = "faults_ledger"
SEED = faults.chaos_seeds(1)[0]
WORKERS = faults.env_int("IURAN_CHAOS_WORKERS", 500)
OUTAGE_SECONDS = 4.0
FED_DURING_OUTAGE = 100  # schedules sent straight to the ledger's topic across the outage
# "ledger write failed (ConnectionDoesNotExistError); retrying in 0.2s": the write of a
# batch failed and is retried (services/ledger/service.py), and
# "PostgreSQL unreachable (ConnectionRefusedError); retrying in 0.8s": the reconnect loop
# it then waits in (services/runtime/database.py), whose delays grow while PostgreSQL is down.
WRITE_RETRY_LINE = re.compile(r"ledger write failed \((\w+)\); retrying in ([0-9.]+)s")
RECONNECT_LINE = re.compile(r"PostgreSQL unreachable \((\w+)\); retrying in ([0-9.]+)s")


@pytest.fixture(scope="module")
def pg_stack() -> Iterator[FaultStack]:
    with faults.fault_stack("postgres", restartable_postgres=True, ledger_role=ROLE) as stack:
        yield stack


def ledger_ready(stack: FaultStack) -> bool | None:
    body = readyz_body(stack.settings, "ledger")
    return None if body is None else bool(body.get("ready"))


def retries(stack: FaultStack) -> float:
    """iuran_ledger_write_retries_total of the running ledger (-1 when it does not answer)."""
    try:
        text = metrics_text(stack.settings, "ledger")
    except OSError:
        return -1.0
    return metric_value(text, "iuran_ledger_write_retries_total")


def schedules_for_the_ledger(stack: FaultStack, workers: int) -> list[tuple[bytes, bytes]]:
    """Schedules as the validator emits them, of ``workers`` new workers: published while
    PostgreSQL is down (the validator, which needs it, sends none then), they are work that
    reaches the ledger during the outage."""
    programme = load_programmes(stack.settings.programmes_dir)[PROGRAMME]
    messages = []
    for _ in range(workers):
        event = registration(programme=PROGRAMME)
        SENT_NIKS.append(event.worker.nik)
        periods = covered_periods(programme, event.coverage_start, event.months)
        messages.append((event.worker.nik.encode(),
                         due_schedule(programme, event, periods).model_dump_json().encode()))
    return messages


def ledger_log(stack: FaultStack) -> str:
    return (stack.folder / "logs" / "ledger.log").read_text(encoding="utf-8", errors="replace")


async def projector_equals_ledger(stack: FaultStack) -> tuple[dict[str, object], bool]:
    totals = await ledger_totals(stack.database_url)

    async def agrees() -> bool:
        seen = await asyncio.to_thread(coverage_of, stack.settings)
        return bool(seen) and (seen["contributions_booked"], seen["active_workers"]) == (
            totals.contributions, totals.workers)

    ok = await wait_for(agrees, within=60, interval=0.5)
    return coverage_of(stack.settings) or {}, bool(ok)


async def test_postgres_stopped_mid_batch_loses_and_doubles_nothing(pg_stack: FaultStack) -> None:
    stack, settings = pg_stack, pg_stack.settings
    assert stack.postgres is not None
    rng = random.Random(SEED)
    before = await settled(stack, 0)
    retries_before = retries(stack)
    log_offset = len(ledger_log(stack))
    messages, niks = batch(rng, WORKERS)
    fed = schedules_for_the_ledger(stack, FED_DURING_OUTAGE)
    in_batch = len(niks) * 12
    expected = before.contributions + in_batch + FED_DURING_OUTAGE * 12
    since = await mark([settings], "ledger")
    progress = Progress()
    started = time.monotonic()
    sender = asyncio.create_task(publish_paced(settings, TOPIC_REGISTRATIONS, messages,
                                               chunks=12, pause=0.3, progress=progress))

    async def some_booked() -> bool:
        now = await ledger_totals(stack.database_url)
        return now.contributions - before.contributions >= in_batch // 10

    assert await wait_for(some_booked, within=60), "the batch never started booking"
    booked = (await ledger_totals(stack.database_url)).contributions - before.contributions
    await asyncio.to_thread(stack.postgres.stop)
    stopped = time.monotonic()
    readiness: list[tuple[float, bool | None]] = []
    others_ready = []
    at_not_ready = during = None
    feeding = Progress()
    feeder = asyncio.create_task(publish_paced(settings, TOPIC_CONTRIBUTIONS, fed, chunks=10,
                                               pause=OUTAGE_SECONDS / 20, progress=feeding))
    try:
        while time.monotonic() - stopped < OUTAGE_SECONDS:
            ready = await asyncio.to_thread(ledger_ready, stack)
            readiness.append((round(time.monotonic() - stopped, 2), ready))
            if ready is False and at_not_ready is None:
                # not ready: the batch booked before the outage has been committed, and
                # nothing can be booked, so nothing may be committed, until PostgreSQL is back
                at_not_ready = await mark([settings], "ledger")
            await asyncio.sleep(0.25)
        # the validator keeps its state in PostgreSQL: a batch waits (not ready) meanwhile
        others_ready = [await asyncio.to_thread(readyz_body, settings, "projector")]
        # the ledger process holds what it read and could not book: uncommitted
        during = await mark([settings], "ledger")
        await feeder
        (lag_at_outage_end,) = (await wait_caught_up(
            settings, [(GROUPS["ledger"], TOPIC_CONTRIBUTIONS)], within=0)).values()
    finally:
        await asyncio.to_thread(stack.postgres.start)
    restarted = time.monotonic()

    async def ready_again() -> bool:
        return bool(await asyncio.to_thread(ledger_ready, stack))

    back = await wait_for(ready_again, within=60)
    ready_after = round(time.monotonic() - restarted, 1)
    await sender
    totals = await settled(stack, expected)
    projected, projector_ok = await projector_equals_ledger(stack)
    log = ledger_log(stack)[log_offset:]
    write_failures = [error for error, _ in WRITE_RETRY_LINE.findall(log)]
    delays = [float(d) for _, d in RECONNECT_LINE.findall(log)]
    retried = retries(stack) - retries_before
    first_not_ready = next((t for t, ready in readiness if ready is False), None)
    held = (during.consumed - since.consumed) - (during.committed - since.committed)
    committed_in_outage = (None if at_not_ready is None
                           else during.committed - at_not_ready.committed)
    record("fault.postgres-outage", seed=SEED, workers=len(niks), expected=expected,
           booked_before_stop=booked, in_flight=in_batch - booked,
           published_at_stop=progress.published, of=len(messages),
           outage_seconds=round(restarted - stopped, 1), not_ready_after=first_not_ready,
           ready_again_after=ready_after, held_uncommitted_in_outage=held,
           committed_while_down=committed_in_outage, fed_during_outage=feeding.published,
           ledger_lag_at_outage_end=lag_at_outage_end,
           write_retries=retried,
           write_failures_logged=write_failures[:12], reconnect_delays=delays[:12],
           booked=totals.contributions, projector=projected.get("contributions_booked"),
           seconds=round(time.monotonic() - started, 1), **verdict(expected, totals, projected))

    assert first_not_ready is not None, f"/readyz of the ledger never said not ready: {readiness}"
    after = [ready for t, ready in readiness if t >= first_not_ready]
    assert not any(after), f"the ledger said ready while PostgreSQL was down: {readiness}"
    assert all(body and body.get("ready") for body in others_ready), \
        f"the projector needs no PostgreSQL, yet: {others_ready}"
    assert back, "the ledger never became ready again after PostgreSQL came back"
    assert in_batch - booked > 0, "PostgreSQL stopped after the batch was booked"
    # Whatever the ledger took while PostgreSQL was down it holds uncommitted: its group
    # commits nothing from the moment it says not ready until PostgreSQL is back (how much
    # it took, `held`, depends on the moment: a ledger that finds its idle connection lost
    # waits to reconnect before it fetches; the exact count below says none of it is lost).
    assert committed_in_outage == 0, (
        f"the ledger committed {committed_in_outage} offsets while PostgreSQL was down")
    # ...and the schedules sent to it during the outage were all work it had not committed
    # when the outage ended (taken and held, or still in the topic), none of it lost after
    assert feeding.published == FED_DURING_OUTAGE
    assert lag_at_outage_end >= FED_DURING_OUTAGE, (
        f"the ledger's group committed past schedules it could not book: lag "
        f"{lag_at_outage_end} < {FED_DURING_OUTAGE}")
    # Here the ledger mostly sees its connection closed first and waits in the reconnect
    # loop (a write cut off mid-way, logged and counted, is
    # test_a_write_that_fails_is_retried_not_skipped's).
    assert len(delays) >= 2 and delays == sorted(delays) and max(delays) > min(delays), \
        f"the reconnect loop did not back off: {delays}"
    assert_ledger_exact(expected, totals)
    assert projector_ok, f"projector {projected} != ledger {totals}"


async def test_the_ledger_is_not_ready_while_postgres_is_down_even_when_idle(
    pg_stack: FaultStack,
) -> None:
    stack = pg_stack
    assert stack.postgres is not None
    await settled(stack, 0)
    assert ledger_ready(stack), "the ledger should be ready before the outage"
    await asyncio.to_thread(stack.postgres.stop)
    try:
        async def not_ready() -> bool:
            return await asyncio.to_thread(ledger_ready, stack) is False

        went_not_ready = await wait_for(not_ready, within=15)
    finally:
        await asyncio.to_thread(stack.postgres.start)

    async def ready() -> bool:
        return bool(await asyncio.to_thread(ledger_ready, stack))

    assert await wait_for(ready, within=60), "the ledger never became ready again"
    record("fault.postgres-idle-outage", not_ready_within_15s=bool(went_not_ready))
    assert went_not_ready, "PostgreSQL was down for 15 s and the ledger's /readyz said ready"


async def test_a_write_that_fails_is_retried_not_skipped(pg_stack: FaultStack) -> None:
    """The ledger's write is cut off in the middle (its connection terminated while it waits
    on a lock that this test holds): it is retried, and every row arrives once."""
    stack, settings = pg_stack, pg_stack.settings
    before = await settled(stack, 0)
    retries_before = retries(stack)
    log_offset = len(ledger_log(stack))
    messages, niks = batch(random.Random(SEED + 2), 200)
    expected = before.contributions + len(niks) * 12
    holder = await asyncpg.connect(stack.database_url)
    terminated = 0
    try:
        locked = holder.transaction()
        await locked.start()
        # SHARE: inserts wait for it, reads (the gauges, this test) do not
        await holder.execute("LOCK TABLE ledger.contributions IN SHARE MODE")
        await publish_paced(settings, TOPIC_REGISTRATIONS, messages, chunks=1, pause=0,
                            progress=Progress())

        # The ledger's write waits on the lock: its connection is cut off, the write fails
        # with the batch uncommitted, and must be retried.
        deadline = time.monotonic() + 60
        while retries(stack) < retries_before + 1 and time.monotonic() < deadline:
            for row in await holder.fetch(
                    "SELECT pid FROM pg_stat_activity WHERE usename = $1 "
                    "AND wait_event_type = 'Lock'", ROLE):
                terminated += bool(
                    await holder.fetchval("SELECT pg_terminate_backend($1)", row["pid"]))
            await asyncio.sleep(0.3)
        booked_while_failing = (await ledger_totals(stack.database_url, niks)).contributions
        await locked.commit()
    finally:
        await holder.close()
    totals = await settled(stack, expected)
    retried_writes = retries(stack) - retries_before
    logged = [error for error, _ in WRITE_RETRY_LINE.findall(ledger_log(stack)[log_offset:])]
    record("fault.write-retried", workers=len(niks), writes_cut_off=terminated,
           write_retries=retried_writes, write_failures_logged=logged[:12],
           booked_while_failing=booked_while_failing,
           booked=totals.contributions, lost=max(expected - totals.contributions, 0),
           doubled=max(totals.contributions - expected, 0))
    assert retried_writes >= 1 and terminated >= 1, "the failed write was not retried"
    # every retry counted in iuran_ledger_write_retries_total is logged, and only those
    assert len(logged) == retried_writes, (retried_writes, logged)
    assert booked_while_failing == 0
    assert_ledger_exact(expected, totals)


@dataclass
class RefusedWrites:
    expected: int
    booked_while_refused: int
    retries_while_refused: float
    ledger_alive: bool
    exit_code: int | None
    booked_after: int
    totals: faults.LedgerTotals


async def admin(url: str, sql: str) -> None:
    connection = await asyncpg.connect(url)
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


@pytest.fixture(scope="module")
async def refused_writes(pg_stack: FaultStack) -> AsyncIterator[RefusedWrites]:
    """INSERT revoked from the ledger's role during a batch, then granted again."""
    stack, settings = pg_stack, pg_stack.settings
    before = await settled(stack, 0)
    retries_before = retries(stack)
    messages, niks = batch(random.Random(SEED + 1), 100)
    expected = before.contributions + len(niks) * 12
    writer = faults.LEDGER_WRITER
    await admin(stack.database_url, f"REVOKE INSERT ON ALL TABLES IN SCHEMA ledger FROM {writer}")
    try:
        await publish_paced(settings, TOPIC_REGISTRATIONS, messages, chunks=1, pause=0,
                            progress=Progress())
        process = stack.services.processes["ledger"]

        async def refused_or_dead() -> bool:
            if process.poll() is not None:
                return True
            return await asyncio.to_thread(retries, stack) > retries_before

        await wait_for(refused_or_dead, within=60)
        await asyncio.sleep(2)  # a while longer: still nothing may be booked, or skipped
        booked_while = (await ledger_totals(stack.database_url, niks)).contributions
        alive = process.poll() is None
        retried = (await asyncio.to_thread(retries, stack)) - retries_before if alive else 0.0
        exit_code = process.poll()
    finally:
        await admin(stack.database_url, f"GRANT INSERT ON ALL TABLES IN SCHEMA ledger TO {writer}")
    if not alive:  # as `iuran up` does for a service that died
        stack.services.restart_dead()
    totals = await settled(stack, expected)
    observed = RefusedWrites(expected, booked_while, retried, alive, exit_code,
                             (await ledger_totals(stack.database_url, niks)).contributions, totals)
    record("fault.insert-revoked", workers=len(niks), booked_while_refused=booked_while,
           write_retries=retried, ledger_stayed_up=alive, exit_code=exit_code,
           booked_after_grant=observed.booked_after, lost=max(expected - totals.contributions, 0),
           doubled=max(totals.contributions - expected, 0))
    yield observed


async def test_a_write_refused_for_lack_of_privilege_is_not_skipped(
    refused_writes: RefusedWrites,
) -> None:
    assert refused_writes.booked_while_refused == 0
    assert refused_writes.booked_after == 100 * 12, "rows refused once never arrived"
    assert_ledger_exact(refused_writes.expected, refused_writes.totals)


async def test_a_write_refused_for_lack_of_privilege_is_retried_in_place(
    refused_writes: RefusedWrites,
) -> None:
    assert refused_writes.ledger_alive, \
        f"the ledger exited with code {refused_writes.exit_code} instead of retrying"
    assert refused_writes.retries_while_refused > 0


async def test_the_logs_of_this_stack_carry_no_personal_data(pg_stack: FaultStack) -> None:
    await assert_logs_carry_no_personal_data(pg_stack)
