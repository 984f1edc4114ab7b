"""Running the `iuran` CLI in-process in a test, and one-off work on a database."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
from collections.abc import Awaitable, Callable, Iterator
from typing import TypeVar

import asyncpg
import pytest

from services.cli.main import main
from services.ledger import book
from services.runtime.settings import Settings, get_settings

Run = Callable[..., tuple[int, str, str]]  # (argv...) -> (exit code, stdout, stderr)
T = TypeVar("T")


@contextlib.contextmanager
def cli_with(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
             **env: str) -> Iterator[Run]:
    """The CLI as a user runs it, with these environment variables (IURAN_...) set."""
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()

    def run(*argv: str) -> tuple[int, str, str]:
        try:
            code = main(list(argv))
        except SystemExit as exc:  # a bad argument
            code = int(exc.code or 0)
        out, err = capsys.readouterr()
        return code, out, err

    try:
        yield run
    finally:
        get_settings.cache_clear()


def on_db(url: str, work: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
    """Run ``work`` on a connection of its own, ready for booking."""
    async def go() -> T:
        connection = await asyncpg.connect(url)
        try:
            await book.prepare(connection)
            return await work(connection)
        finally:
            await connection.close()
    return asyncio.run(go())


async def iuran_command(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    """`iuran ARGS` as its own process against a stack's broker and database (no other
    IURAN_ setting of this environment leaks into it)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("IURAN_")}
    env["IURAN_DATABASE_URL"] = settings.database_url or ""
    env["IURAN_KAFKA_BOOTSTRAP"] = settings.kafka_bootstrap or ""
    return await asyncio.to_thread(
        subprocess.run, [sys.executable, "-m", "services.cli.main", *args], env=env,
        capture_output=True, text=True, timeout=120, check=False)
