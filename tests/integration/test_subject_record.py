"""A person's whole record on request: an OPD registers a worker through the gateway of the
running stack and stops part of the enrolment; the data protection officer gets one document
with what was sent, the decisions, months, history and who read it — through the API (role
auditor only) and `iuran privacy subject` — and the request is itself recorded."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import asyncpg
import httpx
import pytest

from schemas.events import TOPIC_REGISTRATIONS
from services.runtime.settings import Settings
from services.runtime.stack import ServiceProcesses, service_environment
from tests.security.test_personal_data import person_name
from tests.support.gateway import DINSOS, base_url, outcomes
from tests.support.kafka import publish
from tests.support.settle import handled
from tests.support.workers import as_message, deregistration, registration, unique_nik

pytestmark = pytest.mark.integration

AUDITOR = {"Authorization": "Bearer iuran-dev-auditor-token"}
FINANCE = {"Authorization": "Bearer iuran-dev-finance-token"}
OPS = {"Authorization": "Bearer iuran-dev-ops-token"}


def _cli(settings: Settings, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "services.cli.main", *argv],
                          env=service_environment(settings), capture_output=True, text=True,
                          timeout=120, check=False)


async def test_the_dpo_gets_a_persons_whole_record(
    stack: ServiceProcesses, settings: Settings, db: asyncpg.Pool, tmp_path: Path,
) -> None:
    event = registration(opd_code="DINSOS", months=3)
    name = person_name()
    event = event.model_copy(update={"worker": event.worker.model_copy(
        update={"full_name": name})})
    nik = event.worker.nik
    async with httpx.AsyncClient(base_url=base_url(settings), timeout=60) as client:
        sent = await client.post("/v1/registrations", json=[event.model_dump(mode="json")],
                                 headers={**DINSOS, "Content-Type": "application/json"})
        assert sent.status_code == 201, sent.text
        await outcomes(client, sent.json()["submission_id"], DINSOS)
        await publish(settings, TOPIC_REGISTRATIONS, [as_message(deregistration(
            nik, "2026-02", opd_code="DINSOS"))])
        await handled(settings)
        assert (await client.get(f"/workers/{nik}/history", headers=FINANCE)).status_code == 200
        for headers in (FINANCE, OPS, DINSOS):
            refused = await client.get(f"/privacy/subjects/{nik}", headers=headers)
            assert refused.status_code == 403
        assert (await client.get("/privacy/subjects/12345", headers=AUDITOR)).status_code == 422
        response = await client.get(f"/privacy/subjects/{nik}", headers=AUDITOR)
        nobody = await client.get(f"/privacy/subjects/{unique_nik()}", headers=AUDITOR)
    assert response.status_code == 200, response.text
    record = response.json()
    assert record["nik"] == nik and record["found"]
    assert [r["event"]["worker"]["full_name"] for r in record["submitted"]] == [name]
    assert sorted(d["event_type"] for d in record["decisions"]) == ["deregistered",
                                                                   "registered"]
    assert sorted((m["period"], m["status"]) for m in record["months"]) == [
        ("2025-12", "booked"), ("2026-01", "booked"), ("2026-02", "cancelled")]
    assert {h["event"] for h in record["history"]} >= {"booked", "cancelled"}
    assert record["enrolments"] and record["enrolments"][0]["opd_code"] == "DINSOS"
    assert any(a["actor"] == "dev-finance" and a["what"] == "/workers/{nik}/history"
               for a in record["access_log"])
    assert not nobody.json()["found"] and not nobody.json()["months"]

    out = tmp_path / "subject.json"
    written = await asyncio.to_thread(_cli, settings, "privacy", "subject", nik, "--out",
                                      str(out), "--purpose", "request 2026/17")
    assert written.returncode == 0, written.stderr
    assert name not in written.stdout
    document = json.loads(out.read_text(encoding="utf-8"))
    assert [(m["contribution_id"], m["status"]) for m in document["months"]] == [
        (m["contribution_id"], m["status"]) for m in record["months"]]
    assert any(a["actor"] == "dev-auditor" and a["what"] == "/privacy/subjects/{nik}"
               for a in document["access_log"]), "the API request is not recorded"
    logged = await db.fetchval(
        "SELECT count(*) FROM privacy.personal_data_access WHERE what = "
        "'iuran privacy subject' AND $1 = ANY(niks) AND purpose = 'request 2026/17'", nik)
    assert logged == 1
    text = await asyncio.to_thread(_cli, settings, "privacy", "subject", nik)
    assert text.returncode == 0 and "months: 3" in text.stdout and name in text.stdout
