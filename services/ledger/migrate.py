"""Numbered SQL migrations owned by the ledger, applied in order on start (idempotent)."""

from __future__ import annotations

import logging
from importlib import resources

import asyncpg

log = logging.getLogger(__name__)

_LOCK_KEY = 0x1_0AA_2025  # advisory lock: one migrator at a time across processes


def migration_files() -> list[tuple[int, str, str]]:
    """(version, name, sql) of every migration shipped with the ledger, in order."""
    folder = resources.files("services.ledger") / "migrations"
    found = []
    for entry in folder.iterdir():
        name = entry.name
        if name.endswith(".sql") and name[:3].isdigit():
            found.append((int(name[:3]), name, entry.read_text(encoding="utf-8")))
    return sorted(found)


async def migrate(connection: asyncpg.Connection) -> list[str]:
    """Apply the migrations not yet applied; returns the names applied now."""
    applied_now: list[str] = []
    await connection.execute("SELECT pg_advisory_lock($1)", _LOCK_KEY)
    try:
        exists = await connection.fetchval("SELECT to_regclass('public.iuran_migrations')")
        if exists is None:  # a role without CREATE on public can run once it exists
            await connection.execute(
                """CREATE TABLE IF NOT EXISTS public.iuran_migrations (
                       version integer PRIMARY KEY,
                       name text NOT NULL,
                       applied_at timestamptz NOT NULL DEFAULT now())"""
            )
        done = {
            row["version"]
            for row in await connection.fetch("SELECT version FROM public.iuran_migrations")
        }
        for version, name, sql in migration_files():
            if version in done:
                continue
            async with connection.transaction():
                await connection.execute(sql)
                await connection.execute(
                    "INSERT INTO public.iuran_migrations (version, name) VALUES ($1, $2)",
                    version, name,
                )
            log.info("applied migration %s", name)
            applied_now.append(name)
    finally:
        await connection.execute("SELECT pg_advisory_unlock($1)", _LOCK_KEY)
    return applied_now


async def migrate_url(url: str) -> list[str]:
    connection = await asyncpg.connect(url)
    try:
        return await migrate(connection)
    finally:
        await connection.close()
