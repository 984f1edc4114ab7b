"""Every read of personal data leaves a row in privacy.personal_data_access, through the API
of the running stack, its exports and the CLI; the data protection officer reads the log
(API role auditor, `iuran privacy access-log`, PostgreSQL role iuran_auditor) and nobody
changes it."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from schemas.events import TOPIC_REGISTRATIONS, WorkerRegistered
from services.runtime.settings import Settings
from services.runtime.stack import ServiceProcesses, service_environment
from tests.support.gateway import DINSOS, base_url
from tests.support.kafka import publish
from tests.support.settle import handled
from tests.support.workers import as_message, registration

pytestmark = pytest.mark.integration

FINANCE = {"Authorization": "Bearer iuran-dev-finance-token"}
OPS = {"Authorization": "Bearer iuran-dev-ops-token"}
AUDITOR = {"Authorization": "Bearer iuran-dev-auditor-token"}


@pytest.fixture(scope="module")
async def workers(stack: ServiceProcesses, settings: Settings) -> list[WorkerRegistered]:
    events = [registration(opd_code="DINSOS", months=2) for _ in range(2)]
    await publish(settings, TOPIC_REGISTRATIONS, [as_message(e) for e in events])
    await handled(settings)
    return events


async def _log_of(db: asyncpg.Pool, nik: str) -> list[dict[str, Any]]:
    rows = await db.fetch("SELECT * FROM privacy.personal_data_access WHERE $1 = ANY(niks) "
                          "ORDER BY id", nik)
    return [dict(r) for r in rows]


def _cli(settings: Settings, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "services.cli.main", *argv],
                          env=service_environment(settings), capture_output=True, text=True,
                          timeout=120, check=False)


async def test_api_reads_exports_and_commands_are_recorded(
    workers: list[WorkerRegistered], settings: Settings, db: asyncpg.Pool, tmp_path: Path,
) -> None:
    nik, other = workers[0].worker.nik, workers[1].worker.nik
    async with httpx.AsyncClient(base_url=base_url(settings), timeout=30) as client:
        history = await client.get(f"/workers/{nik}/history", headers={
            **FINANCE, "X-Purpose": "reconciling the BPJS bill of December"})
        assert history.status_code == 200 and history.json()["items"]
        assert (await client.get("/contributions", headers=OPS,
                                 params={"opd_code": "DINSOS"})).status_code == 200
        export = await client.get("/export/contributions", headers=FINANCE,
                                  params={"nik": other})
        assert export.status_code == 200 and other in export.text
        assert (await client.get(f"/v1/workers/{nik}", headers=DINSOS)).status_code == 200
    exported = await asyncio.to_thread(
        _cli, settings, "export", "contributions", "--out", str(tmp_path / "c.csv"), "--nik", nik,
        "--purpose", "letters to the workers")
    assert exported.returncode == 0, exported.stderr

    mine = await _log_of(db, nik)
    seen = {(r["actor"], r["channel"], r["what"]) for r in mine}
    assert ("dev-finance", "api", "/workers/{nik}/history") in seen
    assert ("dev-ops", "api", "/contributions") in seen
    assert ("dev-opd-dinsos", "api", "/v1/workers/{nik}") in seen
    assert any(r["channel"] == "export" and r["what"] == "iuran export contributions"
               and r["purpose"] == "letters to the workers" and r["actor"].startswith("os:")
               for r in mine)
    purposes = {r["what"]: r["purpose"] for r in mine if r["actor"] == "dev-finance"}
    assert purposes["/workers/{nik}/history"] == "reconciling the BPJS bill of December"
    assert [r["masked"] for r in mine if r["actor"] == "dev-ops"] == [True]
    exports = await _log_of(db, other)
    assert any(r["channel"] == "export" and r["what"] == "/export/{view}"
               and r["filters"] and json.loads(r["filters"])["nik"] == other for r in exports)


async def test_the_auditor_reads_the_log_others_may_not(
    workers: list[WorkerRegistered], settings: Settings,
) -> None:
    nik = workers[0].worker.nik
    async with httpx.AsyncClient(base_url=base_url(settings), timeout=30) as client:
        await client.get(f"/workers/{nik}/history", headers=FINANCE)
        for headers in (FINANCE, OPS, DINSOS):
            response = await client.get("/privacy/access-log", headers=headers)
            assert response.status_code == 403
        found = await client.get("/privacy/access-log", headers=AUDITOR,
                                 params={"nik": nik})
        assert found.status_code == 200
        items = found.json()["items"]
        assert items and all(nik in i["niks"] or i["filters"].get("nik") == nik
                             or not i["niks"] for i in items)
        assert any(i["what"] == "/workers/{nik}/history" for i in items)
    listed = await asyncio.to_thread(_cli, settings, "privacy", "access-log", "--nik", nik,
                                     "--json")
    assert listed.returncode == 0, listed.stderr
    lines = [json.loads(line) for line in listed.stdout.splitlines()]
    assert any(line["what"] == "/privacy/access-log" and line["actor"] == "dev-auditor"
               for line in lines), "reading the log is not itself recorded"
    bad = await asyncio.to_thread(_cli, settings, "privacy", "access-log", "--nik", "12")
    assert bad.returncode == 2 and "16 digits" in bad.stderr


async def test_the_log_is_append_only_and_the_auditor_role_only_reads(
    workers: list[WorkerRegistered], db: asyncpg.Pool,
) -> None:
    async with db.acquire() as connection:
        for statement in ("UPDATE privacy.personal_data_access SET purpose = 'x'",
                          "DELETE FROM privacy.personal_data_access",
                          "TRUNCATE privacy.personal_data_access"):
            with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
                await connection.execute(statement)
        async with connection.transaction():
            await connection.execute("SET LOCAL ROLE iuran_auditor")
            assert await connection.fetchval(
                "SELECT count(*) FROM privacy.personal_data_access") > 0
            assert await connection.fetchval("SELECT count(*) FROM finance.contributions") > 0
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await connection.execute(
                    "INSERT INTO privacy.personal_data_access (actor, role, channel, what, "
                    "nik_count, purpose) VALUES ('x', 'x', 'api', 'x', 0, 'x')")
