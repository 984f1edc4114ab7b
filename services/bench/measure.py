"""A batch end to end: publish registrations as fast as the producer goes, wait until the
ledger has booked every month of them, and report the rate, CPU and memory of the run."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import asyncpg

from schemas.events import TOPIC_CONTRIBUTIONS, TOPIC_LEDGER, TOPIC_REGISTRATIONS
from services.bench import ledger_sql
from services.bench.infra import MemorySampler, Stack, cpu_delta, cpu_snapshot
from services.bench.lag import LagProbe, caught_up
from services.bench.workload import Workload
from services.runtime.kafka import publish_all

PIPELINE_TOPICS = [TOPIC_REGISTRATIONS, TOPIC_CONTRIBUTIONS, TOPIC_LEDGER]
SQL_EVERY = 30.0  # seconds between ledger counts while the consumers are still behind


class BenchTimeout(RuntimeError):
    """The pipeline did not book what was published in time."""


async def wait_booked(st: Stack, probe: LagProbe, expected: int, timeout: float) -> float:
    """Wait until ``expected`` contributions are booked; return the last booking's time.

    The cheap signal (every consumer group caught up) decides when to count in the ledger,
    so polling does not add PostgreSQL work while the batch runs; the count decides.
    """
    connection = await asyncpg.connect(st.settings.database_url or "")
    try:
        deadline = time.monotonic() + timeout
        counted_at = time.monotonic()
        while True:
            quiet = caught_up(await probe.sample(), PIPELINE_TOPICS)
            if quiet or time.monotonic() - counted_at >= SQL_EVERY:
                counted_at = time.monotonic()
                count, last = await ledger_sql.booked(connection)
                if count >= expected and last is not None:
                    return last
                if time.monotonic() > deadline:
                    raise BenchTimeout(f"{count:,} of {expected:,} contributions booked "
                                       f"after {timeout:.0f} s")
            await asyncio.sleep(0.5)
    finally:
        await connection.close()


async def wait_caught_up(probe: LagProbe, timeout: float) -> float | None:
    """Wait until no consumer group is behind (the projector too); None after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if caught_up(await probe.sample(), PIPELINE_TOPICS):
            return time.time()
        await asyncio.sleep(0.5)
    return None


async def warm_up(st: Stack, work: Workload, count: int = 200) -> None:
    """A few registrations through the whole pipeline first, so every consumer group has
    joined and committed before anything is timed."""
    part = work.take(count)
    await publish_all(st.settings, TOPIC_REGISTRATIONS, work.messages(part))
    async with LagProbe(st.settings, PIPELINE_TOPICS) as probe:
        await wait_booked(st, probe, work.expected_contributions(work.taken), timeout=300)
        await wait_caught_up(probe, timeout=120)


def per_contribution_us(cpu: dict[str, float], contributions: int) -> dict[str, float]:
    return {name: round(seconds / contributions * 1e6, 2) for name, seconds in cpu.items()}


async def batch(st: Stack, work: Workload, registrations: int,
                timeout: float = 3600) -> dict[str, Any]:
    part = work.take(registrations)
    contributions = work.expected_contributions(registrations)
    async with LagProbe(st.settings, PIPELINE_TOPICS) as probe:
        before = cpu_snapshot(st)
        with MemorySampler(st) as memory:
            started = time.time()
            await publish_all(st.settings, TOPIC_REGISTRATIONS, work.messages(part),
                              every=10_000)
            published = time.time()
            last = await wait_booked(st, probe, work.expected_contributions(work.taken),
                                     timeout)
            settled = await wait_caught_up(probe, timeout=300)
        cpu = cpu_delta(before, cpu_snapshot(st))
    seconds = max(last - started, 1e-6)
    return {
        "registrations": registrations,
        "contributions": contributions,
        "seconds": round(seconds, 2),
        "publish_seconds": round(published - started, 2),
        "all_consumers_caught_up_seconds": (round(settled - started, 2)
                                            if settled is not None else None),
        "contributions_per_second": round(contributions / seconds, 1),
        "cpu_seconds": cpu,
        "cpu_us_per_contribution": per_contribution_us(cpu, contributions),
        "peak_rss_mb": memory.peak_mb(),
    }


async def check_exact(st: Stack, work: Workload) -> dict[str, Any]:
    connection = await asyncpg.connect(st.settings.database_url or "")
    try:
        return await ledger_sql.exactness(connection, work.expected_rows())
    finally:
        await connection.close()
