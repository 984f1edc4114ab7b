"""Shared by the finance commands: run a coroutine against the ledger database (embedded
when IURAN_DATABASE_URL is unset), whose schema `iuran migrate` brought up to date."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import asyncpg

from services.domain.programme import Programme, ProgrammeConfigError, load_programmes
from services.ledger.migrate import SchemaNotMigrated, require_migrated
from services.ledger.payments import ResolutionError
from services.runtime.settings import Settings
from services.runtime.stack import infrastructure

T = TypeVar("T")


def with_ledger(settings: Settings, work: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
    """Run ``work`` on the ledger's database; what the ledger refuses (a resolution that
    cannot be made) is the command's one-line error."""
    from services.cli.errors import CliError

    async def run(url: str) -> T:
        connection = await asyncpg.connect(url)
        try:
            try:
                await require_migrated(connection)
            except SchemaNotMigrated as exc:
                raise CliError(str(exc)) from exc
            try:
                return await work(connection)
            except ResolutionError as exc:
                raise CliError(str(exc)) from exc
        finally:
            await connection.close()

    with infrastructure(settings.model_copy(update={"kafka_bootstrap": "unused"})) as ready:
        assert ready.database_url
        return asyncio.run(run(ready.database_url))


def programme_of(settings: Settings, programme_id: str) -> Programme:
    from services.cli.errors import CliError

    try:
        programmes = load_programmes(settings.programmes_dir)
    except ProgrammeConfigError as exc:
        raise CliError(str(exc)) from exc
    if programme_id not in programmes:
        raise CliError(f"unknown programme {programme_id!r}; known: {', '.join(programmes)}")
    return programmes[programme_id]

