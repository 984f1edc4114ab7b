"""BPJS's bill reconciled line by line before it is paid (real broker, ledger service,
PostgreSQL, the CLI): each line is matched, amount_differs, not_verified or not_ours, a
month BPJS did not bill is missing_at_bpjs, finance.bpjs_bills says what to pay; a bill is
kept once, bad rows of the file and records that are no bill are reported or set aside."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import httpx
import pytest

from schemas.events import TOPIC_BPJS_BILLS, TOPIC_BPJS_VERIFICATIONS, BpjsBill, BpjsVerification
from services.domain.programme import load_programmes
from services.ledger import book
from services.ledger.budget import ensure_allocation
from services.runtime.settings import Settings
from services.runtime.stack import ServiceProcesses
from tests.support.cli import iuran_command
from tests.support.faults import GROUPS, wait_for
from tests.support.gateway import base_url
from tests.support.kafka import publish
from tests.support.ledger import NikSource, schedule
from tests.support.settle import handled

pytestmark = pytest.mark.integration

STAGES = ((GROUPS["ledger"], TOPIC_BPJS_VERIFICATIONS), (GROUPS["ledger"], TOPIC_BPJS_BILLS))
NIKS = NikSource(region=8)
FINANCE = {"Authorization": "Bearer iuran-dev-finance-token"}



async def test_a_bpjs_bill_is_reconciled_line_by_line_and_kept_once(
    stack: ServiceProcesses, settings: Settings, database_url: str, db: asyncpg.Pool,
    tmp_path: Path
) -> None:
    malang = load_programmes(Settings().programmes_dir)["malang-2025"]
    ok, discounted, unverified, unbilled, stranger = NIKS.take(5)
    connection = await asyncpg.connect(database_url)
    try:
        await book.prepare(connection)
        await ensure_allocation(connection, malang)
        await book.book_schedules(connection, [
            schedule(malang, nik, ["2025-12"]) for nik in (ok, discounted, unverified, unbilled)])
    finally:
        await connection.close()
    day = datetime(2025, 12, 5, tzinfo=UTC)
    await publish(settings, TOPIC_BPJS_VERIFICATIONS, [
        (nik.encode(), BpjsVerification(
            verification_id=uuid.uuid4(), programme=malang.id, nik=nik, status="verified",
            kpj=f"26{nik[-9:]}", effective_period="2025-12", verified_at=day,
        ).model_dump_json().encode()) for nik in (ok, discounted, unbilled)])
    await handled(settings, STAGES)

    bill_id = f"TAG-{uuid.uuid4().hex[:8]}"
    file = tmp_path / "tagihan.csv"
    file.write_text(
        "NO TAGIHAN,TGL TAGIHAN,NIK,NO KPJ,PERIODE,JKK,JKM,JHT,JUMLAH\n"
        f"{bill_id},2025-12-10,{ok},26{ok[-9:]},2025-12,10.000,6.800,,16.800\n"
        f"{bill_id},2025-12-10,{discounted},26{discounted[-9:]},12/2025,5000,3400,,8400\n"
        f"{bill_id},2025-12-10,{unverified},,2025-12,10000,6800,,16800\n"
        f"{bill_id},2025-12-10,{stranger},,2025-12,10000,6800,,16800\n"
        f"{bill_id},2025-12-10,{ok},,2025-12,10000,6800,,99999\n"
        f"{bill_id},2025-12-10,{ok},,13/2025,10000,6800,,16800\n"
        f"{bill_id},2025-12-10,{ok},,2025-12,sepuluh,6800,,16800\n",
        encoding="utf-8")
    imported = await iuran_command(settings, "bpjs", "bill", "import", str(file),
                            "--programme", malang.id)
    assert imported.returncode == 1, imported.stderr
    assert [line.split(":")[0:2] for line in imported.stderr.strip().splitlines()] == [
        ["row 6", " invalid_row"], ["row 7", " invalid_period"], ["row 8", " invalid_amount"]]
    assert "published 1 bill(s) with 4 line(s)" in imported.stdout
    await handled(settings, STAGES)

    lines = {(r["nik"], r["outcome"]): (r["expected_idr"], r["billed_idr"], r["payable_idr"])
             for r in await db.fetch("SELECT * FROM finance.bpjs_reconciliation "
                                     "WHERE bpjs_bill_id = $1 AND nik = ANY($2::text[])",
                                     bill_id, [ok, discounted, unverified, unbilled, stranger])}
    assert lines == {
        (ok, "matched"): (16_800, 16_800, 16_800),
        (discounted, "amount_differs"): (16_800, 8_400, 8_400),
        (unverified, "not_verified"): (16_800, 16_800, 0),
        (stranger, "not_ours"): (None, 16_800, 0),
        (unbilled, "missing_at_bpjs"): (16_800, None, 0),
    }
    summary = await db.fetchrow("SELECT * FROM finance.bpjs_bills WHERE bpjs_bill_id = $1",
                                bill_id)
    assert (summary["billed_idr"], summary["payable_idr"], summary["reconciled"]) == (
        16_800 * 3 + 8_400, 16_800 + 8_400, False)
    # (other tests' verified workers of the programme may be missing from this bill too)
    assert summary["unreconciled_lines"] >= 4

    # the same file again, the same bill id with other content, and a record that is no bill
    again = await iuran_command(settings, "bpjs", "bill", "import", str(file),
                                "--programme", malang.id)
    assert again.returncode == 1
    other = BpjsBill(bpjs_bill_id=bill_id, programme=malang.id, period="2025-12",
                     issued_at=day, lines=[{"nik": ok, "period": "2025-12", "jkk_idr": 1,
                                            "jkm_idr": 1, "amount_idr": 2}])
    marker = uuid.uuid4().hex
    await publish(settings, TOPIC_BPJS_BILLS, [
        (bill_id.encode(), other.model_dump_json().encode()),
        (marker.encode(), json.dumps({"bpjs_bill_id": marker, "lines": []}).encode())])
    await handled(settings, STAGES)
    assert await db.fetchval("SELECT count(*) FROM ledger.bpjs_bill_lines "
                             "WHERE bpjs_bill_id = $1", bill_id) == 4
    dead = await db.fetch("SELECT reason FROM ledger.dead_letters WHERE topic = $1 "
                          "AND key = ANY($2::bytea[])", TOPIC_BPJS_BILLS,
                          [bill_id.encode(), marker.encode()])
    assert sorted(r["reason"] for r in dead) == ["bpjs_bill_id_reused", "malformed_bpjs_bill"]

    async with httpx.AsyncClient(base_url=base_url(settings), timeout=30) as client:
        listed = await client.get("/bpjs/bills", params={"programme": malang.id},
                                  headers=FINANCE)
        assert listed.status_code == 200, listed.text
        mine = [b for b in listed.json()["items"] if b["bpjs_bill_id"] == bill_id]
        assert [(b["payable_idr"], b["reconciled"]) for b in mine] == [(25_200, False)]
        flagged = await client.get("/bpjs/reconciliation", headers=FINANCE, params={
            "bpjs_bill_id": bill_id, "outcome": "amount_differs"})
        assert [r["nik"] for r in flagged.json()["items"]] == [discounted]
        metrics = await client.get(
            f"http://{settings.http_host}:{settings.port_of('ledger')}/metrics")
    assert ('iuran_bpjs_bill_lines_unreconciled_total{outcome="amount_differs",'
            f'programme="{malang.id}"}}') in metrics.text
    # the month BPJS did not bill is counted too, on a gauge that the alert watches (set on
    # the ledger's next gauge refresh after the bill, every 10 s)
    gauge = f'iuran_bpjs_months_missing_at_bpjs{{programme="{malang.id}"}}'

    async def missing_months() -> float:
        async with httpx.AsyncClient(timeout=10) as client:
            text = (await client.get(
                f"http://{settings.http_host}:{settings.port_of('ledger')}/metrics")).text
        lines = [line for line in text.splitlines() if line.startswith(gauge)]
        return float(lines[0].split()[-1]) if lines else 0.0

    assert await wait_for(missing_months, within=30, interval=0.5) >= 1
