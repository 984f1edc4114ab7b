"""The registration gateway of the shared stack on hostile bodies: binary junk under every
content type, a zip bomb dressed as a workbook, JSON nested ten thousand deep, formulas,
NUL bytes, huge strings, events of other OPDs, forged tokens. Every answer is a 4xx with a
stable code, or a receipt whose rows carry errors; never a 5xx or a stack trace, and no
bad row is sent to the registrations topic."""

from __future__ import annotations

import io
import json
import zipfile

import asyncpg
import httpx
import pytest
from openpyxl import Workbook

from services.domain.columns import COLUMNS
from services.runtime.settings import Settings
from services.runtime.stack import ServiceProcesses
from tests.support import faults
from tests.support.gateway import DISHUB, base_url, template_csv, template_row
from tests.support.workers import registration, unique_nik

pytestmark = pytest.mark.integration

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
LEAK_MARKERS = ["Traceback", "asyncpg", "openpyxl", "File \"/", "postgresql://",
                "Internal Server Error", "pydantic_core", "zipfile"]


def zip_bomb() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("xl/worksheets/sheet1.xml", b"0" * (200 * 1024 * 1024))
    return out.getvalue()


def formula_workbook(nik: str) -> bytes:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(list(COLUMNS))
    sheet.append([nik, "=HYPERLINK(\"http://x\")", "1990-01-01", "M", "ojek_online", "Klojen",
                  "Kauman", "", "2025-12", 12])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def cases(niks: list[str]) -> list[tuple[str, str, bytes]]:
    """(name, content type, body) of requests that must publish nothing."""
    hostile = registration(opd_code="DISHUB", nik=niks[0])
    nested = ("[" * 10_000 + "]" * 10_000).encode()
    return [
        ("png as csv", "text/csv", b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 50),
        ("png as xlsx", XLSX, b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 50),
        ("zip bomb", XLSX, zip_bomb()),
        ("nested json", "application/json", nested),
        ("json object", "application/json", b'{"event_type": "registered"}'),
        ("json junk", "application/json", b"\xff\xfe\x00garbage"),
        ("json numbers", "application/json", json.dumps([1, "x", None, [], {}]).encode()),
        ("nul in csv", "text/csv", template_csv([template_row(hostile, full_name="Bu\x00di")])),
        ("formula csv", "text/csv", template_csv([template_row(
            registration(opd_code="DISHUB", nik=niks[1]), full_name="=cmd|' /C calc'!A0")])),
        ("formula xlsx", XLSX, formula_workbook(niks[2])),
        ("huge name", "text/csv", template_csv([template_row(
            registration(opd_code="DISHUB", nik=niks[3]), full_name="A" * 100_000)])),
        ("sql in kecamatan", "text/csv", template_csv([template_row(
            registration(opd_code="DISHUB", nik=niks[4]), kecamatan="x'; DROP TABLE x; --")])),
        ("header only", "text/csv", template_csv([])),
        ("no header", "text/csv", b"a,b,c\n1,2,3\n"),
        ("other opd", "application/json", json.dumps([registration(
            opd_code="DINSOS", nik=niks[5]).model_dump(mode="json")]).encode()),
    ]


async def test_hostile_bodies_get_a_4xx_or_row_errors_and_publish_nothing(
    stack: ServiceProcesses, settings: Settings, db: asyncpg.Pool
) -> None:
    niks = [unique_nik() for _ in range(6)]
    statuses: dict[str, int] = {}
    problems: list[str] = []
    async with httpx.AsyncClient(base_url=base_url(settings), timeout=120) as client:
        for name, media, body in cases(niks):
            response = await client.post("/v1/registrations", content=body,
                                         headers={**DISHUB, "Content-Type": media})
            statuses[name] = response.status_code
            text = response.text
            if response.status_code >= 500:
                problems.append(f"{name}: {response.status_code} {text[:200]}")
            elif response.status_code in (200, 201):
                receipt = response.json()
                if receipt["valid"]:
                    problems.append(f"{name}: {receipt['valid']} row(s) passed")
            elif not isinstance(response.json().get("detail"), dict | str):
                problems.append(f"{name}: {text[:200]}")
            leaked = [m for m in LEAK_MARKERS if m in text]
            if leaked:
                problems.append(f"{name}: the answer shows {leaked}: {text[:300]}")
        forged = await client.post("/v1/registrations", content=b"[]", headers={
            "Authorization": "Bearer iuran-dev-opd-dishub-tokem", "Content-Type": "text/csv"})
        anonymous = await client.post("/v1/registrations", content=b"[]")
    faults.record("security.gateway-hostile", requests=len(statuses), statuses=statuses,
                  problems=len(problems))
    assert not problems, "\n".join(problems)
    assert statuses["zip bomb"] == 413 and statuses["other opd"] == 403
    assert statuses["nested json"] == 422
    assert forged.status_code == 401 and anonymous.status_code == 401
    # the gateway sends only recorded rows, and answers after the broker acknowledged them
    assert await db.fetchval("SELECT count(*) FROM registry.submission_rows WHERE nik = ANY($1)"
                             " AND published_at IS NOT NULL", niks) == 0
