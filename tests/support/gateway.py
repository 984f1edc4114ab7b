"""Driving the registration gateway of a running stack: OPD tokens, template files with
the rows a test wants, and waiting until every row of a submission has its outcome."""

from __future__ import annotations

import asyncio
import csv
import io
import time
from typing import Any

import httpx

from schemas.events import WorkerRegistered
from services.api.auth import DEV_OPD_TOKENS
from services.domain.columns import COLUMNS
from services.runtime.settings import Settings

TOKENS = {opd: token for token, opd, _ in DEV_OPD_TOKENS}
DISHUB = {"Authorization": f"Bearer {TOKENS['DISHUB']}"}
DINSOS = {"Authorization": f"Bearer {TOKENS['DINSOS']}"}
DISNAKER = {"Authorization": f"Bearer {TOKENS['DISNAKER']}"}  # a coordinator of malang-2025


def base_url(settings: Settings) -> str:
    return f"http://{settings.http_host}:{settings.api_port}"


def template_row(event: WorkerRegistered, **changes: str) -> list[str]:
    """One row of the upload template for the worker of ``event``."""
    worker = event.worker
    values = {
        "nik": worker.nik, "full_name": worker.full_name,
        "birth_date": worker.birth_date.isoformat(), "sex": worker.sex,
        "category": worker.category.value, "kecamatan": worker.kecamatan,
        "kelurahan": worker.kelurahan, "phone": worker.phone or "",
        "coverage_start": event.coverage_start, "months": str(event.months),
    }
    values.update(changes)
    return [values[c] for c in COLUMNS]


def template_csv(rows: list[list[str]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    writer.writerows(rows)
    return out.getvalue().encode()


async def outcomes(client: httpx.AsyncClient, submission_id: str, headers: dict[str, str],
                   *, timeout: float = 90) -> dict[str, Any]:
    """The submission once every row has a final outcome."""
    deadline = time.monotonic() + timeout
    while True:
        response = await client.get(f"/v1/submissions/{submission_id}", headers=headers)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        if all(r["final"] for r in body["rows"]):
            return body
        assert time.monotonic() < deadline, f"rows still open: {body['rows']}"
        await asyncio.sleep(0.5)


async def upload(client: httpx.AsyncClient, rows: list[list[str]], headers: dict[str, str],
                 *, programme: str = "malang-2025") -> tuple[str, list[dict[str, Any]]]:
    """Upload template ``rows`` as CSV to the gateway and wait for their outcomes: the
    submission's id and its rows."""
    sent = await client.post(f"/v1/registrations?programme={programme}",
                             headers={**headers, "Content-Type": "text/csv"},
                             content=template_csv(rows))
    assert sent.status_code == 201, sent.text
    submission_id = sent.json()["submission_id"]
    return submission_id, (await outcomes(client, submission_id, headers))["rows"]
