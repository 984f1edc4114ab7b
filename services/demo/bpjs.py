"""The demo plays BPJS Ketenagakerjaan: iuran writes the collective-registration file, BPJS
verifies every worker with a KPJ (verdicts on iuran.bpjs.verifications.v1), then bills
exactly what iuran billed (iuran.bpjs.bills.v1, in parts small enough for one Kafka
message each); the bill is paid only once the ledger reconciled every line."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import asyncpg

from schemas.events import (
    TOPIC_BPJS_BILLS,
    TOPIC_BPJS_VERIFICATIONS,
    BpjsBill,
    BpjsBillLine,
    BpjsVerification,
)
from services.adapters.bpjs_files import write_rows
from services.bpjs.submission import HEADERS, submit
from services.domain.programme import Programme
from services.domain.schedule import derived_id
from services.runtime.kafka import publish_all
from services.runtime.settings import Settings
from services.runtime.stack import StackError

LINES_PER_PART = 4_000  # a part of BPJS's bill stays well under one Kafka message (1 MB)

_WORKERS = """
SELECT nik, min(period) AS first_period FROM ledger.live_contributions
 WHERE programme = $1 GROUP BY nik ORDER BY nik"""
_BILLED = """
SELECT b.sequence, c.nik, c.period, c.jkk_idr, c.jkm_idr, l.amount_idr, m.kpj
  FROM ledger.bill_lines l
  JOIN ledger.bills b USING (bill_id)
  JOIN ledger.contributions c USING (contribution_id)
  LEFT JOIN finance.bpjs_members m ON m.programme = c.programme AND m.nik = c.nik
 WHERE l.bill_id = ANY($1::uuid[])
 ORDER BY b.sequence, c.period, c.nik"""


def kpj_of(nik: str) -> str:
    """The demo's participant number of a worker (11 digits, from the NIK)."""
    return f"{int(nik) % 10**11:011d}"


async def _wait(what: str, done: Callable[[], Any], timeout: float,
                alive: Callable[[], None]) -> None:
    deadline = time.monotonic() + timeout
    while not await done():
        alive()
        if time.monotonic() > deadline:
            raise StackError(f"the ledger did not record {what} within {timeout:.0f}s")
        await asyncio.sleep(0.5)


REJECTION = ("R02", "NIK tidak sesuai dengan data Dukcapil")


async def verify_everyone(settings: Settings, pool: asyncpg.Pool, programme: Programme,
                          folder: Path, verified_at: datetime, timeout: float, out: Any,
                          alive: Callable[[], None], rejects: int = 0) -> None:
    """Write the submission file, then answer for BPJS: every worker verified, except the
    first ``rejects`` (by NIK), rejected with BPJS's reason."""
    file = folder / f"bpjs-pendaftaran-{programme.id}.csv"
    async with pool.acquire() as connection:
        made = await submit(connection, programme.id, file_name=file.name,
                            submitted_by="iuran demo", today=verified_at.date())
        workers = await connection.fetch(_WORKERS, programme.id)
    await asyncio.to_thread(write_rows, file, HEADERS, made.rows)
    out.write(f"  BPJS submission {file}: {len(made.rows):,} new worker(s)\n")
    verdicts = [BpjsVerification(
        verification_id=derived_id("demo-bpjs-verdict", programme.id, w["nik"]),
        programme=programme.id, nik=w["nik"], status="verified", kpj=kpj_of(w["nik"]),
        effective_period=w["first_period"], verified_at=verified_at)
        for w in workers[rejects:]]
    verdicts += [BpjsVerification(
        verification_id=derived_id("demo-bpjs-rejection", programme.id, w["nik"]),
        programme=programme.id, nik=w["nik"], status="rejected", reason_code=REJECTION[0],
        reason=REJECTION[1], verified_at=verified_at) for w in workers[:rejects]]
    await publish_all(settings, TOPIC_BPJS_VERIFICATIONS,
                      ((v.nik.encode(), v.model_dump_json().encode()) for v in verdicts))
    ids = [v.verification_id for v in verdicts]

    async def recorded() -> bool:
        found = await pool.fetchval("SELECT count(*) FROM ledger.bpjs_verifications "
                                    "WHERE verification_id = ANY($1::uuid[])", ids)
        return bool(found == len(ids))

    await _wait("BPJS's verdicts", recorded, timeout, alive)
    out.write(f"  BPJS verified {len(ids) - rejects:,} worker(s), each with a KPJ\n")
    if rejects:
        out.write(f"  BPJS rejected {rejects:,} worker(s) ({REJECTION[0]}: {REJECTION[1]}): "
                  "their months not billed yet are cancelled, the OPD sees the reason\n")
    out.flush()


async def reconcile_bills(settings: Settings, pool: asyncpg.Pool, programme: Programme,
                          bill_ids: list[UUID], issued_at: datetime, timeout: float, out: Any,
                          alive: Callable[[], None], discounted: int = 0) -> bool:
    """BPJS bills what iuran billed (``discounted`` lines at the PP 50/2025 half rate, which
    an APBD-paid worker must not get); True when every line matched."""
    rows = await pool.fetch(_BILLED, bill_ids)
    parts: dict[str, list[BpjsBillLine]] = {}
    for n, r in enumerate(rows):
        key = f"{r['sequence']}-{r['period']}"
        jkk, jkm = r["jkk_idr"], r["jkm_idr"]
        if n < discounted:
            jkk, jkm = jkk // 2, jkm // 2
        parts.setdefault(key, []).append(BpjsBillLine(
            nik=r["nik"], kpj=r["kpj"], period=r["period"], jkk_idr=jkk, jkm_idr=jkm,
            amount_idr=jkk + jkm))
    bills = []
    for key, lines in parts.items():
        for start in range(0, len(lines), LINES_PER_PART):
            chunk = lines[start:start + LINES_PER_PART]
            bills.append(BpjsBill(
                bpjs_bill_id=f"TAG-{programme.id}-{key}-{start // LINES_PER_PART + 1:03d}",
                programme=programme.id, period=chunk[0].period, issued_at=issued_at,
                lines=chunk))
    if not bills:
        return True
    await publish_all(settings, TOPIC_BPJS_BILLS,
                      ((b.bpjs_bill_id.encode(), b.model_dump_json().encode()) for b in bills))
    ids = [b.bpjs_bill_id for b in bills]

    async def recorded() -> bool:
        found = await pool.fetchval("SELECT count(*) FROM ledger.bpjs_bills "
                                    "WHERE bpjs_bill_id = ANY($1::text[])", ids)
        return bool(found == len(ids))

    await _wait("BPJS's bill", recorded, timeout, alive)
    outcomes = {r["outcome"]: r["n"] for r in await pool.fetch(
        "SELECT outcome, count(*) AS n FROM finance.bpjs_reconciliation "
        "WHERE bpjs_bill_id = ANY($1::text[]) GROUP BY outcome", ids)}
    lines = sum(outcomes.values())
    out.write(f"  BPJS bill of {lines:,} lines ({len(bills)} parts) reconciled: "
              + ", ".join(f"{n:,} {o}" for o, n in sorted(outcomes.items())) + "\n")
    out.flush()
    return set(outcomes) == {"matched"}
