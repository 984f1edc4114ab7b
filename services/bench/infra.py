"""A fresh bench stack (embedded broker, embedded PostgreSQL, the service processes started
as ``iuran service NAME``) and what the bench reads from the operating system about it: the
process ids, CPU seconds and resident memory of every process."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from services.cli.service import PIPELINE
from services.domain.programme import Programme, default_calendar_dir, load_programmes
from services.runtime.embedded import EmbeddedBroker, EmbeddedPostgres, free_port
from services.runtime.kafka import ensure_topics
from services.runtime.settings import Settings
from services.runtime.stack import ServiceProcesses, service_environment

BENCH_PROGRAMME = "bench-national"


@dataclass
class Stack:
    settings: Settings
    groups: list[ServiceProcesses]
    programme: Programme
    work: Path

    def pids(self) -> dict[str, list[int]]:
        """The service processes by name (one pid per instance)."""
        found: dict[str, list[int]] = {}
        for group in self.groups:
            for name, process in group.processes.items():
                found.setdefault(name, []).append(process.pid)
        return found

    def infrastructure(self) -> dict[str, psutil.Process]:
        """The broker's process and PostgreSQL's postmaster (its backends are children)."""
        found: dict[str, psutil.Process] = {}
        for process in psutil.process_iter(["cmdline"]):
            with contextlib.suppress(psutil.Error):
                line = " ".join(process.info["cmdline"] or [])
                if "tansu" in line and f"tcp://{self.settings.kafka_bootstrap}" in line:
                    found["broker"] = process
                elif f"-D {self.work}" in line:  # the postmaster; backends are its children
                    found["postgres"] = process
        return found


def _seconds(times: Any, *, reaped: bool = False) -> float:
    total = float(times.user + times.system)
    if reaped:  # CPU of children that already exited (PostgreSQL's finished backends)
        total += float(getattr(times, "children_user", 0.0) + getattr(times, "children_system",
                                                                         0.0))
    return total


def cpu_snapshot(st: Stack) -> dict[str, float]:
    """CPU seconds (user + system) used so far by each service (all instances summed), the
    broker, PostgreSQL (postmaster, live backends and backends that exited) and the bench
    process itself (the publisher and the floor's consumer)."""
    used: dict[str, float] = {}
    for name, pids in st.pids().items():
        for pid in pids:
            with contextlib.suppress(psutil.Error):
                used[name] = used.get(name, 0.0) + _seconds(psutil.Process(pid).cpu_times())
    for kind, process in st.infrastructure().items():
        with contextlib.suppress(psutil.Error):
            used[kind] = used.get(kind, 0.0) + _seconds(process.cpu_times(), reaped=True)
            for child in process.children(recursive=True):
                with contextlib.suppress(psutil.Error):
                    used[kind] += _seconds(child.cpu_times())
    used["bench"] = _seconds(psutil.Process().cpu_times())
    return used


def cpu_delta(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {name: round(after[name] - before.get(name, 0.0), 2) for name in sorted(after)}


@dataclass
class MemorySampler:
    """Samples the resident set of every service process (and the broker) in a thread."""

    st: Stack
    every: float = 0.5
    peaks: dict[str, int] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> MemorySampler:
        watched = {f"{name}:{pid}": psutil.Process(pid)
                   for name, pids in self.st.pids().items() for pid in pids}
        broker = self.st.infrastructure().get("broker")
        if broker is not None:
            watched[f"broker:{broker.pid}"] = broker

        def sample() -> None:
            while True:
                for key, process in watched.items():
                    with contextlib.suppress(psutil.Error):
                        self.peaks[key] = max(self.peaks.get(key, 0), process.memory_info().rss)
                if self._stop.wait(self.every):
                    return

        self._thread = threading.Thread(target=sample, daemon=True, name="rss-sampler")
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def peak_mb(self) -> dict[str, float]:
        return {key: round(value / 2**20, 1) for key, value in sorted(self.peaks.items())}


def _bench_programmes(folder: Path, source: Path) -> None:
    """The configured programmes, plus a copy of Malang's with a budget no batch exceeds."""
    folder.mkdir(parents=True)
    for path in source.glob("*.toml"):
        shutil.copy(path, folder / path.name)
    text = (source / "malang-2025.toml").read_text(encoding="utf-8")
    text = text.replace('id = "malang-2025"', f'id = "{BENCH_PROGRAMME}"')
    text = text.replace("budget_idr = 5_300_000_000", "budget_idr = 9_000_000_000_000_000")
    (folder / f"{BENCH_PROGRAMME}.toml").write_text(text, encoding="utf-8")
    shutil.copytree(default_calendar_dir(source), default_calendar_dir(folder))


def _migrate(settings: Settings, log: Path) -> None:
    """``iuran migrate`` against the bench database, as an operator runs it."""
    with log.open("ab") as out:
        subprocess.run([sys.executable, "-m", "services.cli.main", "migrate"],
                       env=service_environment(settings), stdout=out, stderr=subprocess.STDOUT,
                       check=True, timeout=300)


@contextlib.contextmanager
def stack(base: Settings, *, partitions: int, instances: int) -> Iterator[Stack]:
    """A fresh broker and PostgreSQL, the schema migrated, ``instances`` processes of each
    pipeline service started and ready; everything stopped and removed on exit."""
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
        _migrate(settings, work / "migrate.log")
        asyncio.run(ensure_topics(settings))
        for index in range(instances):
            ports = {f"{name}_port": free_port() for name in ("validator", "ledger",
                                                               "projector", "api")}
            group = ServiceProcesses(settings.model_copy(update=ports), PIPELINE,
                                     work / f"logs-{index}")
            group.start()
            groups.append(group)
        for group in groups:
            group.wait_ready(timeout=240)
        programme = load_programmes(settings.programmes_dir)[BENCH_PROGRAMME]
        yield Stack(settings, groups, programme, work)
    finally:
        for group in groups:
            group.stop()
        broker.stop()
        postgres.stop()
        shutil.rmtree(work, ignore_errors=True)
