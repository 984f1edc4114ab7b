"""Postgres connection helpers (asyncpg), created inside the running loop, never at import."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import asyncpg

from services.runtime.retry import until_done

log = logging.getLogger(__name__)

RETRYABLE = (
    OSError,
    asyncio.TimeoutError,
    asyncpg.exceptions.ConnectionDoesNotExistError,
    asyncpg.exceptions.InterfaceError,
    asyncpg.exceptions.PostgresConnectionError,
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.CrashShutdownError,
    asyncpg.exceptions.SerializationError,
    asyncpg.exceptions.DeadlockDetectedError,
    asyncpg.exceptions.TooManyConnectionsError,
    # a role without the privilege it needs: wait not-ready until an operator fixes the grant
    asyncpg.exceptions.InsufficientPrivilegeError,
)


async def connect_with_retry(
    url: str,
    *,
    init: Callable[[asyncpg.Connection], Awaitable[None]] | None = None,
    on_wait: Callable[[bool], None] | None = None,
    max_delay: float = 5.0,
) -> asyncpg.Connection:
    """Connect, waiting with exponential backoff while PostgreSQL is unreachable."""

    async def attempt() -> asyncpg.Connection:
        connection = await asyncpg.connect(url, timeout=10)
        if init is not None:
            await init(connection)
        if on_wait is not None:
            on_wait(True)
        return connection

    def waiting(exc: BaseException, delay: float) -> None:
        if on_wait is not None:
            on_wait(False)
        log.warning("PostgreSQL unreachable (%s); retrying in %.1fs",
                    type(exc).__name__, delay)

    return await until_done(attempt, RETRYABLE, on_retry=waiting, max_delay=max_delay)
