"""The API (FastAPI): finance reads over the ledger's views, the registration gateway for
OPDs and the OPD page. OpenAPI at /docs.

Every data endpoint needs a bearer token (see services.api.auth). NIKs are masked for roles
without personal-data access; each read of personal data is logged with the token's name
and role, the endpoint and the row count, never the data. The endpoints live in
services.api.routes, one router per resource; what they depend on in services.api.deps.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import asyncpg
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse

from services.api.auth import ApiSettings, TokenBook
from services.api.deps import Database
from services.api.producer import Gateway
from services.api.routes import export, finance, opd_page, ops, privacy, registrations, workers
from services.domain.programme import Programme
from services.privacy.keys import DEV_SECRET, PrivacyKeys
from services.runtime.settings import Settings

log = logging.getLogger(__name__)

RouterFactory = Callable[[Callable[[], asyncpg.Pool]], APIRouter]


async def _stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def create_app(
    database_url: str,
    api_settings: ApiSettings,
    routers: Sequence[RouterFactory] = (),
    *,
    kafka: Settings | None = None,
    programmes: dict[str, Programme] | None = None,
    broker_timeout_ms: int = 15_000,
    keys: PrivacyKeys | None = None,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> FastAPI:
    """The FastAPI application; the pool (and, given ``kafka``, the gateway's producer) is
    opened by the lifespan.

    ``routers`` add endpoints of other packages: each factory gets a function returning the
    pool (503 while PostgreSQL is not connected) and returns an APIRouter. Without ``kafka``
    the registration gateway answers 503; ``programmes`` are the configured programmes the
    gateway checks rows against; a request waits ``broker_timeout_ms`` for the broker;
    ``keys`` are the keys of the deployment secret (default: the development secret's)."""
    database = Database(database_url, api_settings.pool_size)
    gateway = Gateway(kafka, timeout_ms=broker_timeout_ms) if kafka is not None else None

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        tasks = [asyncio.create_task(database.connect_forever())]
        if gateway is not None:
            tasks.append(asyncio.create_task(gateway.connect_forever()))
        try:
            yield
        finally:
            for task in tasks:
                await _stop(task)
            if gateway is not None:
                await gateway.close()
            if database.pool is not None:
                await database.pool.close()
                database.pool = None

    app = FastAPI(
        title="iuran API",
        version="1",
        description="Read-only access to the ledger's finance views: contributions, monthly "
                    "bills, budget utilisation, outstanding, discrepancies and arrears, with "
                    "CSV/XLSX export. Bearer tokens with roles finance, ops and auditor; NIKs "
                    "are masked for ops. OPDs (role opd) register workers through "
                    "POST /v1/registrations and follow every row's outcome.",
        lifespan=lifespan,
    )

    @app.exception_handler(asyncpg.exceptions.DataError)
    async def bad_value(_: Request, exc: asyncpg.exceptions.DataError) -> JSONResponse:
        # a value PostgreSQL cannot take as given (a NUL character, a cursor that was
        # tampered with): the caller's mistake, said without the database's own words
        log.info("request refused by PostgreSQL as bad data (%s)", type(exc).__name__)
        return JSONResponse(status_code=422, content={
            "detail": "a parameter holds a value that cannot be used (control characters, "
                      "or a cursor that is not the next_cursor of a previous page)"})

    app.state.database = database
    app.state.gateway = gateway
    app.state.tokens = TokenBook(api_settings.tokens)
    app.state.api_settings = api_settings
    app.state.programmes = programmes or {}
    app.state.privacy = keys or PrivacyKeys.from_secret(DEV_SECRET)
    app.state.clock = clock  # the gateway stamps the events it builds from uploads with it
    for module in (ops, finance, export, registrations, workers, opd_page, privacy):
        app.include_router(module.router)
    for factory in routers:
        app.include_router(factory(database.require))
    generated = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = generated()
            document.setdefault("components", {}).setdefault("schemas", {}).update(
                registrations.event_schemas())
        return app.openapi_schema or generated()

    app.openapi = openapi  # type: ignore[method-assign]
    return app
