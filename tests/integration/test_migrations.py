"""The migration runner on real PostgreSQL: checksums of applied migrations, repeatable views
re-created when their file changes, a second run that does nothing, the databases of the
development layout refused, and a service that waits (not ready) for `iuran migrate`."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable

import asyncpg
import pytest

from services.ledger import migrate as runner
from services.ledger.migrate import (
    NOT_MIGRATED,
    ChangedMigrationError,
    SqlFile,
    UnreleasedLayoutError,
    migrate,
    unmigrated,
)
from services.ledger.service import LedgerService
from services.runtime.settings import Settings
from tests.support.ledger import scratch_database

pytestmark = pytest.mark.integration

BUDGET_CHANGES = "views/finance.budget_changes.sql"


@pytest.fixture
async def blank(database_url: str) -> AsyncIterator[str]:
    async with scratch_database(database_url, prefix="iuran_migrate", migrated=False) as url:
        yield url


@pytest.fixture
async def connection(blank: str) -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(blank)
    try:
        yield connection
    finally:
        await connection.close()


async def _bookkeeping(connection: asyncpg.Connection) -> list[tuple[object, ...]]:
    rows = await connection.fetch(
        "SELECT version::text, name, checksum, applied_at FROM public.iuran_migrations "
        "UNION ALL SELECT NULL, name, checksum, applied_at FROM public.iuran_repeatables "
        "ORDER BY 1, 2")
    return [tuple(row) for row in rows]


async def _view_columns(connection: asyncpg.Connection, view: str) -> list[str]:
    rows = await connection.fetch(
        "SELECT attname FROM pg_attribute WHERE attrelid = $1::regclass AND attnum > 0 "
        "ORDER BY attnum", view)
    return [row["attname"] for row in rows]


async def test_migrating_twice_changes_nothing(connection: asyncpg.Connection) -> None:
    first = await migrate(connection)
    assert first[0] == "001_baseline.sql"
    assert BUDGET_CHANGES in first
    before = await _bookkeeping(connection)
    view_oid = await connection.fetchval("SELECT 'finance.bills'::regclass::oid")

    assert await migrate(connection) == []
    assert await _bookkeeping(connection) == before
    assert await connection.fetchval("SELECT 'finance.bills'::regclass::oid") == view_oid
    assert await unmigrated(connection) is None


async def test_an_applied_migration_that_changed_is_refused_by_name(
    connection: asyncpg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    await migrate(connection)
    before = await _bookkeeping(connection)
    shipped = runner.migration_files()
    edited = [(version, SqlFile(f.name, f.sql + "\n-- an edit after it was applied\n"))
              for version, f in shipped]
    monkeypatch.setattr(runner, "migration_files", lambda: edited)

    with pytest.raises(ChangedMigrationError, match="migration 001_baseline.sql was changed"):
        await migrate(connection)
    assert await _bookkeeping(connection) == before


async def test_a_changed_view_file_is_created_again_with_its_grants(
    connection: asyncpg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    await migrate(connection)
    shipped = runner.repeatable_files()
    # Fewer columns: CREATE OR REPLACE VIEW could not do it, the runner drops and creates.
    narrower = ("CREATE VIEW finance.budget_changes AS\n"
                "SELECT change_id, programme FROM ledger.budget_allocation_changes;\n"
                "GRANT SELECT ON finance.budget_changes TO iuran_ledger_writer, iuran_finance;\n")
    changed = [SqlFile(f.name, narrower) if f.name == BUDGET_CHANGES else f for f in shipped]
    monkeypatch.setattr(runner, "repeatable_files", lambda: changed)

    assert await migrate(connection) == [BUDGET_CHANGES]
    assert await _view_columns(connection, "finance.budget_changes") == ["change_id", "programme"]
    assert await connection.fetchval(
        "SELECT has_table_privilege('iuran_finance', 'finance.budget_changes', 'SELECT')")
    assert await connection.fetchval(
        "SELECT checksum FROM public.iuran_repeatables WHERE name = $1",
        BUDGET_CHANGES) == SqlFile(BUDGET_CHANGES, narrower).checksum
    assert await migrate(connection) == []

    monkeypatch.setattr(runner, "repeatable_files", lambda: shipped)
    assert await migrate(connection) == [BUDGET_CHANGES]
    assert "raised_by_idr" in await _view_columns(connection, "finance.budget_changes")


async def test_a_numbered_migration_after_the_baseline_is_applied_once(
    connection: asyncpg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    await migrate(connection)
    shipped = runner.migration_files()
    last = shipped[-1][0]
    name = f"{last + 1:03d}_probe.sql"
    later = SqlFile(name, "ALTER TABLE ledger.bills ADD COLUMN probe integer;\n")
    monkeypatch.setattr(runner, "migration_files", lambda: [*shipped, (last + 1, later)])
    assert await unmigrated(connection) == (
        f"{NOT_MIGRATED} (at version {last}, version {last + 1} needed)")

    assert await migrate(connection) == [name]
    assert await connection.fetchval(
        "SELECT count(*) FROM pg_attribute WHERE attrelid = 'ledger.bills'::regclass "
        "AND attname = 'probe'") == 1
    assert await unmigrated(connection) is None
    assert await migrate(connection) == []


async def test_a_database_of_the_development_layout_is_refused(
    connection: asyncpg.Connection,
) -> None:
    await connection.execute(
        "CREATE TABLE public.iuran_migrations (version integer PRIMARY KEY, name text NOT NULL,"
        " applied_at timestamptz NOT NULL DEFAULT now());"
        "INSERT INTO public.iuran_migrations (version, name)"
        " SELECT v, 'development' FROM generate_series(1, 14) v")

    with pytest.raises(UnreleasedLayoutError) as refused:
        await migrate(connection)
    message = str(refused.value)
    assert "\n" not in message
    assert "recreate it" in message and "make clean" in message
    assert await unmigrated(connection) == message
    assert await connection.fetchval("SELECT to_regnamespace('ledger')") is None


async def _soon(condition: Callable[[], bool], seconds: float = 30.0) -> bool:
    for _ in range(int(seconds * 10)):
        if condition():
            return True
        await asyncio.sleep(0.1)
    return condition()


async def test_the_ledger_service_waits_not_ready_until_the_schema_is_migrated(
    blank: str,
) -> None:
    service = LedgerService(Settings(database_url=blank, kafka_bootstrap="127.0.0.1:9"))
    running = asyncio.create_task(service.run())
    try:
        assert await _soon(lambda: service.readiness()[1].startswith(NOT_MIGRATED))
        assert service.readiness()[0] is False
        await asyncio.sleep(2.5)  # it keeps checking: still waiting, still alive
        assert not running.done()
        assert service.readiness()[1].startswith(NOT_MIGRATED)

        connection = await asyncpg.connect(blank)
        try:
            await migrate(connection)
        finally:
            await connection.close()
        assert await _soon(lambda: not service.readiness()[1].startswith(NOT_MIGRATED))
        assert not running.done()
    finally:
        service.stopping.set()
        running.cancel()  # it now waits for the broker, which this test does not start
        with contextlib.suppress(asyncio.CancelledError):
            await running
