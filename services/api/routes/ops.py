"""/healthz, /readyz and /metrics of the API (no token)."""

from __future__ import annotations

import asyncio
from typing import Annotated

import asyncpg
from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest
from pydantic import BaseModel

from services.api.deps import Database, database
from services.runtime import metrics
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
    return Health(status="ok", service=SERVICE)


@router.get("/readyz", response_model=Readiness,
            responses={503: {"model": Readiness, "description": "not ready, with why"}})
async def readyz(db: Annotated[Database, Depends(database)]) -> JSONResponse:
    ready, detail = False, db.detail
    if db.pool is not None:
        try:
            ready = bool(await asyncio.wait_for(db.pool.fetchval(
                "SELECT to_regclass('finance.contributions') IS NOT NULL"), timeout=3))
            detail = "ok" if ready else "the ledger schema is not migrated yet"
        except (*RETRYABLE, asyncpg.PostgresError) as exc:
            detail = f"PostgreSQL unreachable ({type(exc).__name__})"
    metrics.SERVICE_READY.labels(SERVICE).set(1 if ready else 0)
    return JSONResponse({"ready": ready, "service": SERVICE, "detail": detail},
                        status_code=200 if ready else 503)


@router.get("/metrics", response_class=Response,
            responses={200: {"content": {CONTENT_TYPE_LATEST: {}},
                             "description": "Prometheus text format"}})
async def prometheus_metrics() -> Response:
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)
