"""The ledger's schema, applied by ``iuran migrate`` (and the stack's start): numbered
migrations once each, then the repeatable objects, all in one transaction under an
advisory lock (one migrator at a time across processes).

* ``migrations/NNN_*.sql`` run once, in order; ``public.iuran_migrations`` records each with
  the sha256 of its file. A file changed after it was applied is refused
  (:class:`ChangedMigrationError`): a change to the schema is a new numbered file.
* The files named in ``objects.txt`` (views and non-trigger functions, one per file) are
  re-created, in that order, whenever any of them is new or changed, a numbered migration
  ran, or one was removed from the list; ``public.iuran_repeatables`` records their sha256.
  Views are dropped first (in reverse order) and created again; functions are replaced.

The services never migrate: they check that the schema is at the version they need
(:func:`unmigrated`) and stay not ready until it is.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from importlib import resources

import asyncpg

log = logging.getLogger(__name__)

_LOCK_KEY = 0x1_0AA_2025  # advisory lock: one migrator at a time across processes
NOT_MIGRATED = "schema not migrated: run iuran migrate"


class MigrationError(Exception):
    """The ledger's schema cannot be migrated as it is; the message says what to do."""


class ChangedMigrationError(MigrationError):
    """A numbered migration was changed after it was applied to this database."""


class UnreleasedLayoutError(MigrationError):
    """The database was made by the development migrations that preceded the baseline."""


@dataclass(frozen=True)
class SqlFile:
    name: str  # migrations/001_baseline.sql -> "001_baseline.sql"; objects: "views/x.sql"
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode("utf-8")).hexdigest()


def migration_files() -> list[tuple[int, SqlFile]]:
    """(version, file) of every numbered migration shipped with the ledger, in order."""
    folder = resources.files("services.ledger") / "migrations"
    found = []
    for entry in folder.iterdir():
        name = entry.name
        if name.endswith(".sql") and name[:3].isdigit():
            found.append((int(name[:3]), SqlFile(name, entry.read_text(encoding="utf-8"))))
    return sorted(found, key=lambda item: item[0])


def repeatable_files() -> list[SqlFile]:
    """The repeatable objects in the order of ``objects.txt``."""
    package = resources.files("services.ledger")
    listed = (package / "objects.txt").read_text(encoding="utf-8").splitlines()
    names = [line.split("#", 1)[0].strip() for line in listed]
    return [SqlFile(name, (package / name).read_text(encoding="utf-8"))
            for name in names if name]


def _view_name(file_name: str) -> str | None:
    """views/finance.bills.sql -> finance.bills; None for a function's file."""
    folder, _, rest = file_name.partition("/")
    return rest.removesuffix(".sql") if folder == "views" else None


def _function_name(file_name: str) -> str | None:
    folder, _, rest = file_name.partition("/")
    return rest.removesuffix(".sql") if folder == "functions" else None


async def migrate(connection: asyncpg.Connection) -> list[str]:
    """Bring the schema up to date; returns what was applied now (numbered migrations, then
    the repeatable files that were new or changed). Migrating an up-to-date database does
    nothing and returns an empty list."""
    async with connection.transaction():
        await connection.execute("SELECT pg_advisory_xact_lock($1)", _LOCK_KEY)
        await _refuse_unreleased_layout(connection)
        await _create_bookkeeping(connection)
        applied = {row["version"]: (row["name"], row["checksum"]) for row in
                   await connection.fetch("SELECT version, name, checksum"
                                          " FROM public.iuran_migrations")}
        pending = []
        for version, file in migration_files():
            if version not in applied:
                pending.append((version, file))
            elif applied[version][1] != file.checksum:
                raise ChangedMigrationError(
                    f"migration {file.name} was changed after it was applied to this database "
                    f"(recorded sha256 {applied[version][1][:12]}…, file {file.checksum[:12]}…):"
                    " restore the file and put the change in a new numbered migration")
        recorded = {row["name"]: row["checksum"] for row in
                    await connection.fetch("SELECT name, checksum FROM public.iuran_repeatables")}
        objects = repeatable_files()
        changed = [f.name for f in objects if recorded.get(f.name) != f.checksum]
        removed = sorted(set(recorded) - {f.name for f in objects})
        if not (pending or changed or removed):
            return []
        await _drop_views([*objects, *(SqlFile(name, "") for name in removed)], connection)
        for version, file in pending:
            await connection.execute(file.sql)
            await connection.execute(
                "INSERT INTO public.iuran_migrations (version, name, checksum)"
                " VALUES ($1, $2, $3)", version, file.name, file.checksum)
            log.info("applied migration %s", file.name)
        await _drop_views(objects, connection)  # a migration may have made one of them
        for name in removed:
            function = _function_name(name)
            if function is not None:
                await connection.execute(f"DROP FUNCTION IF EXISTS {function}")
        for file in objects:
            await connection.execute(file.sql)
        await connection.execute("DELETE FROM public.iuran_repeatables")
        await connection.executemany(
            "INSERT INTO public.iuran_repeatables (name, checksum) VALUES ($1, $2)",
            [(f.name, f.checksum) for f in objects])
        await _grant_bookkeeping(connection)
        log.info("repeatable objects re-created (%d new or changed)", len(changed))
        return [file.name for _, file in pending] + changed


async def _drop_views(files: list[SqlFile], connection: asyncpg.Connection) -> None:
    for file in reversed(files):
        view = _view_name(file.name)
        if view is not None:
            await connection.execute(f"DROP VIEW IF EXISTS {view}")


async def _refuse_unreleased_layout(connection: asyncpg.Connection) -> None:
    """The development migrations recorded versions without checksums; their databases are
    not upgraded (nothing made by them was ever released)."""
    if await connection.fetchval("SELECT to_regclass('public.iuran_migrations')") is None:
        return
    has_checksum = await connection.fetchval(
        "SELECT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid ="
        " 'public.iuran_migrations'::regclass AND attname = 'checksum' AND NOT attisdropped)")
    if not has_checksum:
        raise UnreleasedLayoutError(
            "this database was made by the unreleased development migrations (no checksums"
            " in public.iuran_migrations) and cannot be migrated: recreate it (remove the"
            " embedded data dir, e.g. `make clean`, or drop and create the database), then"
            " run `iuran migrate`")


async def _create_bookkeeping(connection: asyncpg.Connection) -> None:
    await connection.execute(
        """CREATE TABLE IF NOT EXISTS public.iuran_migrations (
               version     integer PRIMARY KEY,
               name        text NOT NULL,
               checksum    text NOT NULL,  -- sha256 of the file, hex
               applied_at  timestamptz NOT NULL DEFAULT now());
           CREATE TABLE IF NOT EXISTS public.iuran_repeatables (
               name        text PRIMARY KEY,  -- views/<schema>.<name>.sql, functions/...
               checksum    text NOT NULL,
               applied_at  timestamptz NOT NULL DEFAULT now())""")


async def _grant_bookkeeping(connection: asyncpg.Connection) -> None:
    """The services (the writer role) read the applied versions to know they may start."""
    await connection.execute(
        "GRANT SELECT ON public.iuran_migrations, public.iuran_repeatables"
        " TO iuran_ledger_writer")


async def migrate_url(url: str) -> list[str]:
    connection = await asyncpg.connect(url)
    try:
        return await migrate(connection)
    finally:
        await connection.close()


async def unmigrated(connection: asyncpg.Connection) -> str | None:
    """Why this database is not at the schema version this code needs; None when it is (a
    database migrated further by newer code is fine)."""
    try:
        if await connection.fetchval("SELECT to_regclass('public.iuran_migrations')") is None:
            return NOT_MIGRATED
        await _refuse_unreleased_layout(connection)
        latest = await connection.fetchval("SELECT max(version) FROM public.iuran_migrations")
    except asyncpg.InsufficientPrivilegeError:
        return "cannot read public.iuran_migrations: grant SELECT on it to this role"
    except UnreleasedLayoutError as exc:
        return str(exc)
    needed = migration_files()[-1][0]
    if latest is None or latest < needed:
        return f"{NOT_MIGRATED} (at version {latest or 0}, version {needed} needed)"
    return None


class SchemaNotMigrated(MigrationError):
    """Raised by :func:`require_migrated` when the schema is behind this code."""


async def require_migrated(connection: asyncpg.Connection) -> None:
    reason = await unmigrated(connection)
    if reason is not None:
        raise SchemaNotMigrated(reason)
