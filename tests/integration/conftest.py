"""Fixtures of the ledger's integration tests: a scratch database of its own per module
(migrated), a connection ready for booking, unique NIKs and the Malang programme."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest

from services.domain.programme import Programme, load_programmes
from services.ledger import book
from services.runtime.settings import Settings
from tests.support.ledger import NikSource, scratch_database


@pytest.fixture(scope="module")
async def ledger_url(database_url: str) -> AsyncIterator[str]:
    async with scratch_database(database_url, prefix="iuran_ledger") as url:
        yield url


@pytest.fixture(scope="module")
def niks() -> NikSource:
    return NikSource()


@pytest.fixture(scope="module")
def malang() -> Programme:
    return load_programmes(Settings().programmes_dir)["malang-2025"]


@pytest.fixture
async def conn(ledger_url: str) -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(ledger_url)
    await book.prepare(connection)
    try:
        yield connection
    finally:
        await connection.close()
