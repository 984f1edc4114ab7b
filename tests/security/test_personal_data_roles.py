"""Roles that may not see personal data recover none from what they receive: workers of one
OPD run through the shared stack, then every endpoint is called as ``ops`` and as another
OPD. No full NIK or name appears, cursors decode to nothing readable, and hashing every
birth date a masked NIK could hide into the ledger's UUIDv5 ids matches nothing shown."""

from __future__ import annotations

import asyncio
import base64
import binascii
import csv
import hashlib
import json
import subprocess
import sys
import uuid
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from schemas.events import TOPIC_REGISTRATIONS, WorkerRegistered
from services.domain.nik import mask_nik
from services.domain.schedule import IURAN_NAMESPACE
from services.runtime.settings import Settings
from services.runtime.stack import ServiceProcesses, service_environment
from tests.security.test_personal_data import person_name
from tests.support.gateway import DINSOS, DISHUB, base_url
from tests.support.kafka import publish
from tests.support.settle import handled
from tests.support.workers import as_message, registration

pytestmark = pytest.mark.integration

OPS = {"Authorization": "Bearer iuran-dev-ops-token"}
WORKERS = 6
PROVINCE_OPD = "DINSOS_JATIM"
PAGED = ("/contributions", "/arrears")
LISTS = ("/bills", "/budget", "/outstanding")
PERSONAL_ONLY = ("/discrepancies", "/export/contributions", "/export/arrears",
                 "/export/worker_history")


@dataclass
class Seen:
    """Everything a caller received: the bodies, the cursors and the rows of the lists."""

    texts: list[str] = field(default_factory=list)
    cursors: list[str] = field(default_factory=list)
    rows: dict[str, list[dict[str, Any]]] = field(default_factory=dict)


@pytest.fixture(scope="module")
async def enrolled(stack: ServiceProcesses, settings: Settings) -> list[WorkerRegistered]:
    """Workers DINSOS and the province enrolled, each named, booked by the ledger."""
    events = []
    for number in range(WORKERS):
        event = (registration(opd_code="DINSOS", coverage_start="2025-12", months=3)
                 if number % 2 else
                 registration(opd_code=PROVINCE_OPD, programme="jatim-malang-2026",
                              coverage_start="2026-01", months=3))  # monthly: in arrears
        worker = event.worker.model_copy(update={"full_name": person_name()})
        events.append(event.model_copy(update={"worker": worker}))
    await publish(settings, TOPIC_REGISTRATIONS, [as_message(e) for e in events])
    await handled(settings)
    return events


async def _page_through(client: httpx.AsyncClient, path: str, params: dict[str, str],
                        seen: Seen, pages: int = 60) -> None:
    cursor = None
    for _ in range(pages):
        response = await client.get(path, params={**params, **(
            {"cursor": cursor} if cursor else {})})
        assert response.status_code == 200, f"{path}: {response.status_code} {response.text}"
        seen.texts.append(response.text)
        body = response.json()
        seen.rows.setdefault(path, []).extend(body["items"])
        cursor = body["next_cursor"]
        if cursor is None:
            return
        seen.cursors.append(cursor)


async def _as_ops(settings: Settings) -> Seen:
    seen = Seen()
    async with httpx.AsyncClient(base_url=base_url(settings), headers=OPS,
                                 timeout=30) as client:
        for path in PAGED:
            for opd in ("DINSOS", PROVINCE_OPD):
                await _page_through(client, path, {"opd_code": opd, "limit": "2"}, seen)
        for path in LISTS:
            response = await client.get(path)
            assert response.status_code == 200, f"{path}: {response.text}"
            seen.texts.append(response.text)
        response = await client.get("/monthly-bill", params={"period": "2025-12"})
        assert response.status_code == 200, response.text
        seen.texts.append(response.text)
        for path in PERSONAL_ONLY:
            response = await client.get(path)
            assert response.status_code == 403, f"ops may call {path}: {response.status_code}"
    return seen


def _decoded(cursor: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
    except (binascii.Error, ValueError):
        return cursor.encode()


def _birth_date_candidates(nik: str) -> list[str]:
    """Every NIK the masked form of ``nik`` could be when all its hidden digits but the
    birth date are known (the attacker's best case): each date of 1940-2010, either sex."""
    found = []
    day = date(1940, 1, 1)
    while day <= date(2010, 12, 31):
        for dd in (day.day, day.day + 40):
            found.append(f"{nik[:6]}{dd:02d}{day.month:02d}{day.year % 100:02d}{nik[12:]}")
        day += timedelta(days=1)
    return found


def _uuid5_of(programme: str, candidates: list[str], period: str) -> set[str]:
    ids = set()
    for nik in candidates:
        digest = hashlib.sha1(  # noqa: S324 - the ledger's RFC 4122 v5 ids
            IURAN_NAMESPACE.bytes + f"contribution:{programme}:{nik}:{period}".encode())
        raw = bytearray(digest.digest()[:16])
        raw[6] = (raw[6] & 0x0F) | 0x50
        raw[8] = (raw[8] & 0x3F) | 0x80
        ids.add(str(uuid.UUID(bytes=bytes(raw))))
    return ids


async def test_ops_recovers_no_nik_or_name(
    enrolled: list[WorkerRegistered], settings: Settings,
) -> None:
    seen = await _as_ops(settings)
    niks = [e.worker.nik for e in enrolled]
    names = [e.worker.full_name for e in enrolled]
    text = "\n".join(seen.texts)
    assert not [s for s in niks + names if s in text], "ops reads a full NIK or name"

    ours = {mask_nik(n): n for n in niks}
    shown = [r for r in seen.rows["/contributions"] if r["nik"] in ours]
    assert len(shown) >= WORKERS, "the workers' months are not listed for ops"
    assert len(seen.rows["/arrears"]) >= WORKERS // 2, "no arrears to page through"
    decoded = [_decoded(c) for c in seen.cursors]
    assert not [r for r in decoded for n in niks if n.encode() in r or n[4:12].encode() in r], (
        "a cursor carries a NIK")
    for raw in decoded:
        with pytest.raises(ValueError):
            json.loads(raw)

    shown_ids = {str(r["contribution_id"]) for r in shown}
    for row in shown[:3]:
        nik = ours[row["nik"]]
        candidates = _birth_date_candidates(nik)
        assert nik in candidates
        recovered = _uuid5_of(row["programme"], candidates, row["period"]) & shown_ids
        assert not recovered, f"a UUIDv5 brute force over birth dates recovers {row['nik']}"


async def test_another_opd_reads_nothing_of_a_workers_record(
    enrolled: list[WorkerRegistered], settings: Settings,
) -> None:
    async with httpx.AsyncClient(base_url=base_url(settings), timeout=30) as client:
        texts = []
        for event in enrolled:
            if event.opd_code != "DINSOS":
                continue
            for path in (f"/v1/workers/{event.worker.nik}", f"/v1/events/{event.event_id}"):
                response = await client.get(path, headers=DISHUB)
                assert response.status_code == 404, f"{path}: {response.status_code}"
                texts.append(response.text)
        response = await client.get("/v1/workers", params={"limit": "1000"}, headers=DISHUB)
        assert response.status_code == 200
        texts.append(response.text)
        for path in PAGED + LISTS + PERSONAL_ONLY:
            response = await client.get(path, headers=DISHUB)
            assert response.status_code == 403, f"an OPD may call {path}"
        own = await client.get(f"/v1/workers/{enrolled[1].worker.nik}", headers=DINSOS)
        assert own.status_code == 200, "the enrolling OPD cannot read its own worker"
    text = "\n".join(texts)
    secrets = [e.worker.nik for e in enrolled] + [e.worker.full_name for e in enrolled]
    assert not [s for s in secrets if s in text], "another OPD reads a NIK or name"


async def test_a_masked_export_recovers_no_nik_or_name(
    enrolled: list[WorkerRegistered], settings: Settings, tmp_path: Path,
) -> None:
    niks = [e.worker.nik for e in enrolled]
    secrets = niks + [e.worker.full_name for e in enrolled]
    ours = {mask_nik(n): n for n in niks}
    for view in ("contributions", "arrears", "worker_history"):
        out = tmp_path / f"{view}.csv"
        result = await asyncio.to_thread(
            subprocess.run, [sys.executable, "-m", "services.cli.main", "export", view,
                             "--masked", "--out", str(out)],
            env=service_environment(settings), capture_output=True, text=True, timeout=120,
            check=False)
        assert result.returncode == 0, result.stderr
        text = out.read_text(encoding="utf-8")
        assert not [s for s in secrets if s in text], f"the masked {view} export leaks"
        rows = [r for r in csv.DictReader(text.splitlines()) if r["nik"] in ours]
        assert rows, f"the masked {view} export lists none of the workers"
        shown = {r["contribution_id"] for r in rows if r.get("contribution_id")}
        for row in rows[:2] if shown else []:
            candidates = _birth_date_candidates(ours[row["nik"]])
            assert not _uuid5_of(row["programme"], candidates, row["period"]) & shown
