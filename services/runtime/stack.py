"""Start the infrastructure (embedded unless external is configured) and the service
processes, each its own OS process, as ``iuran up`` and ``iuran demo`` do."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path

from services.runtime.embedded import EmbeddedBroker, EmbeddedPostgres
from services.runtime.settings import Settings

log = logging.getLogger(__name__)


class StackError(RuntimeError):
    """A service process died or never became ready."""


@contextlib.contextmanager
def infrastructure(settings: Settings, *, broker_port: int | None = None) -> Iterator[Settings]:
    """Yield settings that point at running Kafka and PostgreSQL, starting embedded ones for
    whatever is not configured, and stop what was started on exit."""
    broker: EmbeddedBroker | None = None
    postgres: EmbeddedPostgres | None = None
    updates: dict[str, object] = {}
    data_dir = settings.data_dir.resolve()
    try:
        if not settings.kafka_bootstrap:
            broker = EmbeddedBroker(data_dir, port=broker_port)
            updates["kafka_bootstrap"] = broker.start()
        if not settings.database_url:
            postgres = EmbeddedPostgres(data_dir)
            updates["database_url"] = postgres.start()
        yield settings.model_copy(update=updates)
    finally:
        if broker is not None:
            broker.stop()
        if postgres is not None:
            postgres.stop()


def service_environment(settings: Settings) -> dict[str, str]:
    """The environment a child service process needs to reach the same infrastructure."""
    env = dict(os.environ)
    env["IURAN_KAFKA_BOOTSTRAP"] = settings.kafka_bootstrap or ""
    env["IURAN_DATABASE_URL"] = settings.database_url or ""
    env["IURAN_PARTITIONS"] = str(settings.partitions)
    env["IURAN_PROGRAMMES_DIR"] = str(settings.programmes_dir)
    env["IURAN_DATA_DIR"] = str(settings.data_dir.resolve())
    if settings.business_date is not None:
        env["IURAN_BUSINESS_DATE"] = settings.business_date.isoformat()
    for name in ("validator", "ledger", "projector", "api"):
        env[f"IURAN_{name.upper()}_PORT"] = str(settings.port_of(name))
    return env


class ServiceProcesses:
    """The service processes of one stack, started with ``iuran service NAME``."""

    def __init__(self, settings: Settings, names: Sequence[str], log_dir: Path) -> None:
        self.settings = settings
        self.names = list(names)
        self.log_dir = log_dir
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str | None = None) -> None:
        env = service_environment(self.settings)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        for service in [name] if name else self.names:
            with (self.log_dir / f"{service}.log").open("ab") as out:
                self.processes[service] = subprocess.Popen(
                    [sys.executable, "-m", "services.cli.main", "service", service],
                    env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                )
            log.info("started %s (pid %d)", service, self.processes[service].pid)

    def check_alive(self) -> None:
        for name, process in self.processes.items():
            code = process.poll()
            if code is not None:
                raise StackError(
                    f"service {name} exited with code {code}; see {self.log_dir / (name + '.log')}"
                )

    def restart_dead(self) -> list[str]:
        """Start again every service whose process has exited; returns their names."""
        restarted = []
        for name, process in list(self.processes.items()):
            code = process.poll()
            if code is not None:
                log.warning("service %s exited with code %s; starting it again", name, code)
                self.start(name)
                restarted.append(name)
        return restarted

    def start_missing(self) -> list[str]:
        """Start every service of the stack that runs no process (one stopped or killed
        without a restart); returns their names."""
        missing = [name for name in self.names if name not in self.processes]
        for name in missing:
            self.start(name)
        return missing

    def wait_ready(self, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        pending = set(self.processes)
        while pending:
            self.check_alive()
            for name in sorted(pending):
                if readyz(self.settings, name):
                    pending.discard(name)
            if time.monotonic() > deadline:
                raise StackError(f"not ready after {timeout:.0f}s: {', '.join(sorted(pending))}")
            time.sleep(0.25)

    def stop(self, name: str | None = None, *, kill: bool = False) -> None:
        targets = [name] if name else list(self.processes)
        for service in targets:
            process = self.processes.get(service)
            if process is not None and process.poll() is None:
                process.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        for service in targets:
            process = self.processes.pop(service, None)
            if process is None:
                continue
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


def http_json(url: str, timeout: float = 2.0) -> object | None:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - loopback
            body: object = json.loads(response.read())
            return body
    except (urllib.error.URLError, OSError, ValueError):
        return None


def readyz(settings: Settings, service: str) -> bool:
    body = http_json(f"http://{settings.http_host}:{settings.port_of(service)}/readyz")
    return isinstance(body, dict) and body.get("ready") is True
