"""Real infrastructure for tests: the embedded broker, and PostgreSQL — embedded in a
temporary folder, or a fresh database on the server that IURAN_DATABASE_URL names."""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from services.runtime.embedded import EmbeddedBroker, EmbeddedPostgres, free_port
from services.runtime.settings import Settings


def _with_database(url: str, database: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{database}", parts.query, parts.fragment))


async def _create_database(admin_url: str, name: str) -> None:
    connection = await asyncpg.connect(admin_url)
    try:
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()


async def _drop_database(admin_url: str, name: str) -> None:
    connection = await asyncpg.connect(admin_url)
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await connection.close()


@contextlib.contextmanager
def fresh_database(tmp_dir: Path) -> Iterator[str]:
    """A database of its own for this test session; dropped (or its server stopped) after."""
    external = os.environ.get("IURAN_DATABASE_URL")
    if external:
        name = f"iuran_test_{uuid.uuid4().hex[:12]}"
        asyncio.run(_create_database(external, name))
        try:
            yield _with_database(external, name)
        finally:
            asyncio.run(_drop_database(external, name))
    else:
        postgres = EmbeddedPostgres(tmp_dir, database="iuran_test")
        try:
            yield postgres.start()
        finally:
            postgres.stop()


@contextlib.contextmanager
def fresh_broker(tmp_dir: Path) -> Iterator[str]:
    broker = EmbeddedBroker(tmp_dir)
    try:
        yield broker.start()
    finally:
        broker.stop()


# The day the stacks under test take as today: the Malang programme's year (fiscal year
# 2025) is open, whatever the machine's clock says.
BUSINESS_DATE = date(2025, 11, 25)


def stack_settings(bootstrap: str, database_url: str, tmp_dir: Path, **extra: object) -> Settings:
    """Settings for one stack under test, on ports nobody else uses, on BUSINESS_DATE."""
    values: dict[str, object] = {
        "business_date": BUSINESS_DATE,
        "kafka_bootstrap": bootstrap,
        "database_url": database_url,
        "data_dir": tmp_dir,
        "partitions": 4,
        "validator_port": free_port(),
        "ledger_port": free_port(),
        "projector_port": free_port(),
        "api_port": free_port(),
        "kafka_session_timeout_seconds": 6.0,
        "kafka_rebalance_timeout_seconds": 6.0,
    }
    values.update(extra)
    return Settings(**values)  # type: ignore[arg-type]
