"""The latency soak: registrations published at a steady rate for a fixed time, each one's
latency from publication to its last month booked, and every consumer group's lag sampled
while it runs. The run ends by itself: after the publishing time, the pipeline gets a
bounded time to drain, and whatever is not booked by then is reported as such."""

from __future__ import annotations

import asyncio
import itertools
import time
from typing import Any

import asyncpg
from aiokafka import AIOKafkaProducer

from schemas.events import TOPIC_REGISTRATIONS
from services.bench import ledger_sql
from services.bench.infra import MemorySampler, Stack, cpu_delta, cpu_snapshot
from services.bench.lag import LagProbe
from services.bench.measure import (
    PIPELINE_TOPICS,
    BenchTimeout,
    per_contribution_us,
    wait_booked,
    wait_caught_up,
)
from services.bench.report import percentile
from services.bench.visible import VisibleProbe
from services.bench.workload import Workload, months_of
from services.runtime.kafka import client_options


async def _publish_steady(st: Stack, work: Workload, part: tuple[int, int], rate: int,
                          progress: list[int], visible: VisibleProbe) -> dict[str, Any]:
    """Send registration i at start + i / rate; record when each was sent; have ten a
    second watched until they are visible."""
    producer = AIOKafkaProducer(**client_options(st.settings), linger_ms=1)
    await producer.start()
    sent: dict[str, float] = {}
    failures: list[BaseException] = []
    behind = 0.0

    def delivered(future: asyncio.Future[Any]) -> None:
        if not future.cancelled() and future.exception() is not None:
            failures.append(future.exception())  # type: ignore[arg-type]

    watch_every = max(rate // 10, 1)  # ten a second
    events = work.events(part)
    first = next(events)  # the generator skips the earlier slices here, before the clock
    try:
        started = time.monotonic()
        for index, event in enumerate(itertools.chain([first], events)):
            due = started + index / rate
            wait = due - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            else:
                behind = max(behind, -wait)
                if index % 100 == 0:
                    await asyncio.sleep(0)  # let the lag sampler run
            sent[str(event.event_id)] = time.time()
            future = await producer.send(TOPIC_REGISTRATIONS, key=event.worker.nik.encode(),
                                         value=event.model_dump_json().encode())
            future.add_done_callback(delivered)
            if index % watch_every == 0:
                visible.watch(str(event.event_id), sent[str(event.event_id)])
            progress[0] = index + 1
        await producer.flush()
        finished = time.monotonic()
    finally:
        await producer.stop()
    if failures:
        raise RuntimeError(f"{len(failures)} registrations were not delivered: {failures[0]!r}")
    span = max(finished - started, 1e-6)
    return {"sent": sent, "seconds": span, "achieved_rate": len(sent) / span,
            "max_behind_ms": behind * 1000}


async def _sample_lag(probe: LagProbe, started: float, every: float, progress: list[int],
                      samples: list[dict[str, Any]], done: asyncio.Event) -> None:
    """A sample every ``every`` seconds from ``started`` until ``done`` is set."""
    tick = 0
    while True:
        lag = await probe.sample()
        samples.append({"t": round(time.time() - started, 1), "published": progress[0],
                        "lag": lag})
        tick += 1
        wait = max(started + tick * every - time.time(), 0.0)
        try:
            await asyncio.wait_for(done.wait(), timeout=wait)
            return
        except TimeoutError:
            continue


async def soak(st: Stack, work: Workload, rate: int, seconds: int,
               sample_every: float = 5.0, drain_seconds: float | None = None) -> dict[str, Any]:
    part = work.take(rate * seconds)
    months = months_of(st.programme)
    drain = drain_seconds if drain_seconds is not None else max(60.0, seconds / 2)
    samples: list[dict[str, Any]] = []
    progress = [0]
    done = asyncio.Event()
    async with LagProbe(st.settings, PIPELINE_TOPICS) as probe:
        before = cpu_snapshot(st)
        with MemorySampler(st) as memory:
            started = time.time()
            sampler = asyncio.create_task(
                _sample_lag(probe, started, sample_every, progress, samples, done))
            async with VisibleProbe(st.settings.database_url or "", months) as visible:
                published = await _publish_steady(st, work, part, rate, progress, visible)
                drained = True
                publish_end = time.time()
                try:
                    async with LagProbe(st.settings, PIPELINE_TOPICS) as waiting:
                        await wait_booked(st, waiting, work.expected_contributions(work.taken),
                                          timeout=drain)
                        await wait_caught_up(waiting, timeout=30)
                except BenchTimeout:
                    drained = False
                drain_took = time.time() - publish_end
                done.set()
                await sampler
        cpu = cpu_delta(before, cpu_snapshot(st))
    connection = await asyncpg.connect(st.settings.database_url or "")
    try:
        booked = await ledger_sql.registrations_booked(connection)
    finally:
        await connection.close()
    sent = published["sent"]
    booked_ms = {i: (booked[i][1] - at) * 1000 for i, at in sent.items()
                 if i in booked and booked[i][0] == months}
    latencies = sorted(booked_ms.values())
    result: dict[str, Any] = {
        "rate_per_second": rate, "seconds": seconds,
        "registrations_published": len(sent),
        "achieved_rate_per_second": round(published["achieved_rate"], 1),
        "publish_seconds": round(published["seconds"], 1),
        "publisher_max_behind_ms": round(published["max_behind_ms"], 1),
        "registrations_fully_booked": len(latencies),
        "registrations_not_booked": len(sent) - len(latencies),
        "drained": drained,
        "drain_seconds": round(drain_took, 1),
        "drain_timeout_seconds": drain,
        "cpu_seconds": cpu,
        "cpu_us_per_contribution": per_contribution_us(cpu, max(len(sent) * months, 1)),
        "peak_rss_mb": memory.peak_mb(),
        "visible_check": visible.summary(booked_ms),
        "lag_samples": samples,
        "latency_basis": "publisher send time -> max(booked_at) of the registration's months "
                         "in finance.contributions (booked_at is the booking transaction's "
                         "start, so the commit itself is not included)",
    }
    if latencies:
        result.update({f"p{int(q * 100)}_ms": round(percentile(latencies, q), 1)
                       for q in (0.5, 0.95, 0.99)})
        result["max_ms"] = round(latencies[-1], 1)
    return result
