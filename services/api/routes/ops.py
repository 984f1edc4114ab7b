"""/healthz, /readyz and /metrics of the API (no token)."""

from __future__ import annotations

import asyncio
from typing import Annotated

import asyncpg
from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel

from services.api.deps import Database, database
from services.ledger.migrate import unmigrated
from services.runtime import metrics, ops
from services.runtime.database import RETRYABLE

SERVICE = "api"

router = APIRouter(tags=["operations"])


class Health(BaseModel):
    status: str
    service: str


class Readiness(BaseModel):
    ready: bool
    service: str
    detail: str


@router.get("/healthz", response_model=Health)
async def healthz() -> Health:
    return Health(**ops.health(SERVICE))


@router.get("/readyz", response_model=Readiness,
            responses={503: {"model": Readiness, "description": "not ready, with why"}})
async def readyz(db: Annotated[Database, Depends(database)]) -> JSONResponse:
    ready, detail = False, db.detail
    if db.pool is not None:
        try:
            reason = await asyncio.wait_for(_schema_reason(db.pool), timeout=3)
            ready, detail = reason is None, reason or "ok"
        except (*RETRYABLE, asyncpg.PostgresError) as exc:
            detail = f"PostgreSQL unreachable ({type(exc).__name__})"
    metrics.SERVICE_READY.labels(SERVICE).set(1 if ready else 0)
    body, status = ops.readiness(SERVICE, ready, detail)
    return JSONResponse(body, status_code=status)


@router.get("/metrics", response_class=Response,
            responses={200: {"content": {ops.METRICS_CONTENT_TYPE: {}},
                             "description": "Prometheus text format"}})
async def prometheus_metrics() -> Response:
    return Response(ops.metrics_text(), media_type=ops.METRICS_CONTENT_TYPE)


async def _schema_reason(pool: asyncpg.Pool) -> str | None:
    """Why the ledger's schema is not the one this code needs (None: it is)."""
    async with pool.acquire() as connection:
        return await unmigrated(connection)
