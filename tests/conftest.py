"""Session-wide real infrastructure: one broker, one database and one set of service
processes for the whole run (a consumer group takes seconds to join; tests use unique NIKs
and event ids, so nothing needs cleaning between them)."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest

from services.cli.service import EVERY_SERVICE
from services.ledger.migrate import migrate_url
from services.runtime.kafka import ensure_topics
from services.runtime.settings import Settings
from services.runtime.stack import ServiceProcesses
from tests.support.infra import fresh_broker, fresh_database, stack_settings


@pytest.fixture(scope="session")
def session_dir() -> Iterator[Path]:
    # Not pytest's tmp_path: its parents are private to root, and the embedded PostgreSQL
    # server runs as an unprivileged user when the tests run as root.
    path = Path(tempfile.mkdtemp(prefix="iuran-test-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def database_url(session_dir: Path) -> Iterator[str]:
    with fresh_database(session_dir) as url:
        asyncio.run(migrate_url(url))
        yield url


@pytest.fixture(scope="session")
def bootstrap(session_dir: Path) -> Iterator[str]:
    with fresh_broker(session_dir) as address:
        yield address


@pytest.fixture(scope="session")
def settings(bootstrap: str, database_url: str, session_dir: Path) -> Settings:
    settings = stack_settings(bootstrap, database_url, session_dir)
    asyncio.run(ensure_topics(settings))
    return settings


@pytest.fixture(scope="session")
def stack(settings: Settings, session_dir: Path) -> Iterator[ServiceProcesses]:
    """Every service as its own process, as `iuran up` runs them."""
    services = ServiceProcesses(settings, EVERY_SERVICE, session_dir / "logs")
    services.start()
    try:
        services.wait_ready(timeout=120)
        yield services
    finally:
        services.stop()


@pytest.fixture(scope="session")
async def db(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=4)
    try:
        yield pool
    finally:
        await pool.close()
