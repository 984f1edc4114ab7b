"""The read API of the shared stack on hostile query parameters: SQL metacharacters in every
filter, huge and negative limits, impossible dates, forged cursors, NUL bytes, very long and
odd Unicode values, path tricks. Every answer is a 4xx with a reason, or a 200 that matched
nothing; never a 5xx, never a stack trace or a database error text; nothing is written."""

from __future__ import annotations

import asyncio
import base64
import json
from collections import Counter
from urllib.parse import quote

import asyncpg
import httpx
import pytest

from services.runtime.settings import Settings
from services.runtime.stack import ServiceProcesses
from tests.support import faults

pytestmark = pytest.mark.integration

FINANCE = {"Authorization": "Bearer iuran-dev-finance-token"}
SQL = ["' OR '1'='1", "x'; DROP TABLE ledger.contributions; --", "%' UNION SELECT nik FROM "
       "ledger.contributions --", "\\'; SELECT pg_sleep(5); --", "$$ ; $$", "1) OR (1=1",
       "DISNAKER' --", "*", "%", "_", "\"quoted\""]
NUL = ["\u0000", "a\u0000b"]
ODD = ["\u202e", "🙂" * 30, "A" * 65, "A" * 5000, "../../etc/passwd",
       "%00", "\r\nX-Injected: 1", "<script>alert(1)</script>"]
BAD_PERIODS = ["2025-13", "2025-00", "9999-99", "2025-1", "2025/12", "12-2025", "2025-02-30",
               "-2025-12", "2025-12' OR '1'='1", "", "0000-01", "99999-12"]
BAD_LIMITS = ["0", "-1", "1e9", "1000000000000", "99999999999999999999999", "abc", "1.5",
              "NaN", "Infinity", "0x10", ""]
BAD_CURSORS = ["", "!!!", "e30", base64.urlsafe_b64encode(b'["a"]').decode(),
               base64.urlsafe_b64encode(b'{"$gt": ""}').decode(), "A" * 10000]
# A cursor of the right shape whose values are not a period and a UUID.
FORGED_CURSORS = [base64.urlsafe_b64encode(json.dumps(v).encode()).decode().rstrip("=")
                  for v in (["x' OR 1=1 --", "y"], ["2025-12", "not-a-uuid"])]
ENDPOINTS = {
    "/contributions": ["programme", "opd_code", "kecamatan", "category", "status", "nik"],
    "/monthly-bill": ["programme", "opd_code"],
    "/bills": ["programme"],
    "/budget": ["programme"],
    "/outstanding": ["programme"],
    "/discrepancies": ["programme"],
    "/arrears": ["programme", "opd_code", "kecamatan", "nik"],
    "/export/contributions": ["programme", "opd_code", "kecamatan", "nik", "format"],
}
LEAK_MARKERS = ["Traceback", "asyncpg", "psycopg", "syntax error", "SELECT ", "File \"/",
                "postgresql://", "Internal Server Error", "pydantic_core"]


def nul_and_forged_cursor_requests() -> list[tuple[str, dict[str, str]]]:
    cases: list[tuple[str, dict[str, str]]] = []
    for path, fields in ENDPOINTS.items():
        base = {"period": "2025-12"} if path == "/monthly-bill" else {}
        cases += [(path, {**base, name: value}) for name in fields if name != "format"
                  for value in NUL]
    cases += [("/contributions", {"cursor": c}) for c in FORGED_CURSORS]
    return cases


def requests() -> list[tuple[str, dict[str, str]]]:
    cases: list[tuple[str, dict[str, str]]] = []
    for path, fields in ENDPOINTS.items():
        base = {"period": "2025-12"} if path == "/monthly-bill" else {}
        for name in fields:
            for value in SQL + ODD:
                cases.append((path, {**base, name: value}))
        for value in BAD_PERIODS:
            key = "period" if path == "/monthly-bill" else "period_from"
            cases.append((path, {**base, key: value}))
        if path in ("/contributions", "/discrepancies", "/arrears"):
            cases += [(path, {"limit": v}) for v in BAD_LIMITS]
            cases += [(path, {"cursor": v}) for v in BAD_CURSORS]
        cases.append((path, {**base, "period_from": "2026-11", "period_to": "2025-12"}))
    for nik in ["3573014507900001' OR '1'='1", "..%2F..%2Fetc", "1" * 17, "%00" * 16,
                "３５７３０１４５０７９０００１"]:
        cases.append((f"/workers/{quote(nik, safe='%')}/history", {}))
    for view in ["ledger.contributions", "contributions;DROP", "../finance", "pg_shadow"]:
        cases.append((f"/export/{quote(view)}", {}))
    return cases


async def snapshot(db: asyncpg.Pool) -> tuple[list[str], dict[str, int]]:
    tables = [r["t"] for r in await db.fetch(
        "SELECT schemaname || '.' || tablename AS t FROM pg_tables "
        "WHERE schemaname IN ('ledger', 'finance', 'public') ORDER BY 1")]
    counts = {t: await db.fetchval(f"SELECT count(*) FROM {t}")  # noqa: S608 - from pg_tables
              for t in tables if t.startswith("ledger.")}
    return tables, counts


async def ask(settings: Settings, cases: list[tuple[str, dict[str, str]]]
              ) -> tuple[Counter[int], list[str], int]:
    """Send every request (16 at a time); statuses, problems, and the status of a request
    without a token."""
    base = f"http://{settings.http_host}:{settings.api_port}"
    statuses: Counter[int] = Counter()
    problems: list[str] = []
    async with httpx.AsyncClient(base_url=base, headers=FINANCE, timeout=30,
                                 limits=httpx.Limits(max_connections=8)) as client:
        async def one(path: str, params: dict[str, str]) -> None:
            try:
                response = await client.get(path, params=params)
            except httpx.HTTPError as exc:
                problems.append(f"{path} {params!r:.120}: no answer ({type(exc).__name__})")
                return
            statuses[response.status_code] += 1
            text = response.text
            if response.status_code >= 500:
                problems.append(f"{path} {params!r:.120}: {response.status_code} {text[:200]}")
            elif response.status_code == 200 and "application/json" in response.headers.get(
                    "content-type", ""):
                body = response.json()
                items = body.get("items", body.get("rows")) if isinstance(body, dict) else body
                if any(v in SQL for v in params.values()) and items:
                    problems.append(f"{path} {params!r:.120}: a SQL string matched {len(items)}")
            elif not 400 <= response.status_code < 500 and response.status_code != 200:
                problems.append(f"{path} {params!r:.120}: {response.status_code}")
            leaked = [m for m in LEAK_MARKERS
                      if m in text and not any(m in v for v in params.values())]
            if leaked and response.status_code < 500:
                problems.append(f"{path} {params!r:.120}: the answer shows {leaked}: "
                                f"{text[:300]}")

        for start in range(0, len(cases), 16):
            await asyncio.gather(*(one(p, q) for p, q in cases[start:start + 16]))
        unauthenticated = await client.get("/contributions", headers={"Authorization": ""})
    return statuses, problems, unauthenticated.status_code


async def test_hostile_query_parameters_get_a_4xx_or_nothing_and_write_nothing(
    stack: ServiceProcesses, settings: Settings, db: asyncpg.Pool
) -> None:
    tables_before, counts_before = await snapshot(db)
    cases = requests()
    statuses, problems, unauthenticated = await ask(settings, cases)
    tables_after, counts_after = await snapshot(db)
    faults.record("security.api-hostile", requests=len(cases), statuses=dict(statuses),
                  problems=len(problems))
    assert not problems, "\n".join(problems[:25])
    assert unauthenticated == 401
    assert tables_after == tables_before, "a table appeared or went away"
    shrunk = {t: (counts_before[t], counts_after.get(t)) for t in counts_before
              if counts_after.get(t, 0) < counts_before[t]}
    assert not shrunk, f"rows went away: {shrunk}"


async def test_nul_bytes_and_forged_cursors_get_a_4xx(
    stack: ServiceProcesses, settings: Settings
) -> None:
    cases = nul_and_forged_cursor_requests()
    statuses, problems, _ = await ask(settings, cases)
    faults.record("security.api-nul-and-cursors", requests=len(cases), statuses=dict(statuses),
                  problems=len(problems))
    assert not problems, "\n".join(problems[:25])
