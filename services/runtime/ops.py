"""What /healthz, /readyz and /metrics answer, for both HTTP stacks (the aiohttp OpsServer
of the Faust services and the ledger, and the API's FastAPI routes)."""

from __future__ import annotations

from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

METRICS_CONTENT_TYPE = CONTENT_TYPE_LATEST


def health(service: str) -> dict[str, Any]:
    """The /healthz body: the process is up."""
    return {"status": "ok", "service": service}


def readiness(service: str, ready: bool, detail: str) -> tuple[dict[str, Any], int]:
    """The /readyz body and status: 200 when the service can do its work now, else 503."""
    return {"ready": ready, "service": service, "detail": detail}, 200 if ready else 503


def metrics_text() -> bytes:
    """The /metrics body: every metric of the process in the Prometheus text format."""
    return generate_latest(REGISTRY)
