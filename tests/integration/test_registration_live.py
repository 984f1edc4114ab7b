"""Registration rules through the real broker, the service processes and PostgreSQL:
duplicates across OPDs and programmes with two validator processes, deregistration, and the
OPD upload tool."""

from __future__ import annotations

import asyncio
import csv
import os
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import asyncpg
import openpyxl
import pytest

from schemas.events import TOPIC_REGISTRATIONS, TOPIC_REJECTED, RejectedEvent
from services.domain.nik import parse_nik
from services.runtime.embedded import free_port
from services.runtime.settings import Settings
from services.runtime.stack import ServiceProcesses
from tests.support.kafka import collect, publish
from tests.support.settle import handled
from tests.support.workers import as_message, deregistration, registration, unique_nik

pytestmark = pytest.mark.integration


async def active_months(db: asyncpg.Pool, niks: list[str]) -> list[asyncpg.Record]:
    return await db.fetch(
        "SELECT nik, programme, opd_code, period FROM finance.contributions "
        "WHERE nik = ANY($1::text[]) AND status IN ('booked', 'billed', 'paid') "
        "ORDER BY nik, period", niks)


async def wait_for(check, timeout: float = 90.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while True:
        result = await check()
        if result or time.monotonic() > deadline:
            return result
        await asyncio.sleep(0.3)


async def test_two_validators_refuse_a_second_payer_for_the_same_worker_month(
    stack: ServiceProcesses, settings: Settings, db: asyncpg.Pool, session_dir: Path
) -> None:
    ports = {f"{name}_port": free_port() for name in ("validator", "ledger", "projector",
                                                       "api")}
    second = ServiceProcesses(settings.model_copy(update=ports), ["validator"],
                              session_dir / "logs-second-validator")
    second.start()
    try:
        second.wait_ready(timeout=120)
        city = [registration(opd_code="DISHUB") for _ in range(30)]
        niks = [e.worker.nik for e in city]
        await publish(settings, TOPIC_REGISTRATIONS, [as_message(e) for e in city])
        assert len(await wait_for(
            lambda: _at_least(db, niks, 30 * 12))) == 30 * 12

        other_opd = [registration(nik=n, opd_code="DINSOS", coverage_start="2026-06",
                                  months=3) for n in niks[:10]]
        province = [registration(nik=n, programme="jatim-malang-2026",
                                 opd_code="DINSOS_JATIM", coverage_start="2026-10",
                                 months=6) for n in niks[10:20]]
        await publish(settings, TOPIC_REGISTRATIONS,
                      [as_message(e) for e in other_opd + province])
        wanted = {str(e.event_id) for e in other_opd + province}
        records = await collect(
            settings, TOPIC_REJECTED,
            lambda r: RejectedEvent.model_validate_json(r.value).event_id in wanted, want=20)
        rejected = {RejectedEvent.model_validate_json(r.value).event_id:
                    RejectedEvent.model_validate_json(r.value) for r in records}
        assert set(rejected) == wanted
        for event in other_opd:
            errors = rejected[str(event.event_id)].errors
            assert [e.code for e in errors] == ["duplicate_enrollment"]
            assert "DISHUB" in errors[0].message and "malang-2025" in errors[0].message
        # the province pays 2026-12 to 2027-03 only where the city does not: 2026-12 is new
        await handled(settings)
        rows = await active_months(db, niks)
        by_month = {(r["nik"], r["period"]): r for r in rows}
        assert len(by_month) == len(rows), "a worker-month is paid twice"
        for event in province:
            nik = event.worker.nik
            assert by_month[(nik, "2026-11")]["programme"] == "malang-2025"
            assert by_month[(nik, "2026-12")]["programme"] == "jatim-malang-2026"
            assert by_month[(nik, "2026-12")]["opd_code"] == "DINSOS_JATIM"
            codes = [e.code for e in rejected[str(event.event_id)].errors]
            assert codes == ["duplicate_enrollment"]
        assert sum(1 for r in rows if r["programme"] == "jatim-malang-2026") == 10
    finally:
        second.stop()


async def _at_least(db: asyncpg.Pool, niks: list[str], count: int) -> list[asyncpg.Record]:
    rows = await active_months(db, niks)
    return rows if len(rows) >= count else []


async def test_deregistration_reverses_the_months_not_yet_paid(
    stack: ServiceProcesses, settings: Settings, db: asyncpg.Pool
) -> None:
    event = registration()
    nik = event.worker.nik
    await publish(settings, TOPIC_REGISTRATIONS, [as_message(event)])
    assert len(await wait_for(lambda: _at_least(db, [nik], 12))) == 12

    await publish(settings, TOPIC_REGISTRATIONS, [as_message(deregistration(nik, "2026-03"))])

    async def reversed_() -> int:
        return int(await db.fetchval(
            "SELECT count(*) FROM finance.journal_lines WHERE nik = $1 AND kind = 'reversal'",
            nik) >= 9)

    assert await wait_for(reversed_)
    rows = await active_months(db, [nik])
    assert [r["period"] for r in rows] == ["2025-12", "2026-01", "2026-02"]
    balance = await db.fetchval(
        "SELECT sum(CASE kind WHEN 'accrual' THEN amount_idr ELSE -amount_idr END) "
        "FROM finance.journal_lines WHERE nik = $1", nik)
    assert balance == 3 * 16_800


def _rows(count: int, *, bad: int = 0) -> list[list[str]]:
    rows = []
    for index in range(count):
        nik = unique_nik("F")
        born = parse_nik(nik, reference=date(2025, 11, 25)).birth_date
        rows.append([nik, "Sri Lestari", born.isoformat(), "F", "umkm", "Sukun",
                     "Gadang", "0813-1111-2222", "2025-12", "12"])
        if index < bad:
            rows[-1][0] = rows[-1][0][:-1]  # a NIK of 15 digits
    return rows


HEADER = ["nik", "full_name", "birth_date", "sex", "category", "kecamatan", "kelurahan",
          "phone", "coverage_start", "months"]


def _upload(path: Path, settings: Settings, *extra: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("IURAN_")}
    env["IURAN_KAFKA_BOOTSTRAP"] = settings.kafka_bootstrap or ""
    env["IURAN_BUSINESS_DATE"] = str(settings.business_date)  # the programme's year is open
    return subprocess.run(
        [sys.executable, "-m", "services.cli.main", "publish", str(path), "--opd", "DISKOPINDAG",
         "--programme", "malang-2025", *extra],
        env=env, capture_output=True, text=True, timeout=120, check=False)


async def test_iuran_publish_csv_and_xlsx_through_the_broker(
    stack: ServiceProcesses, settings: Settings, db: asyncpg.Pool, tmp_path: Path
) -> None:
    good = _rows(6)
    csv_file = tmp_path / "upload.csv"
    with csv_file.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows([HEADER, *good[:3]])
    xlsx_file = tmp_path / "upload.xlsx"
    book = openpyxl.Workbook()
    sheet = book.active
    for row in [HEADER, *good[3:], *_rows(2, bad=2)]:
        sheet.append(row)
    book.save(xlsx_file)
    niks = [r[0] for r in good]

    first = await asyncio.to_thread(_upload, csv_file, settings)
    assert first.returncode == 0, first.stderr
    refused = await asyncio.to_thread(_upload, xlsx_file, settings)
    assert refused.returncode == 1
    assert "nothing was published" in refused.stdout
    assert "row 5" in refused.stderr and "row 6" in refused.stderr  # spreadsheet row numbers
    assert len(await wait_for(lambda: _at_least(db, niks[:3], 36))) == 36
    assert len(await active_months(db, niks[3:])) == 0

    partial = await asyncio.to_thread(_upload, xlsx_file, settings, "--skip-invalid",
                                      "--rejects-out", str(tmp_path / "bad.csv"))
    assert partial.returncode == 1, partial.stderr
    assert (tmp_path / "bad.csv").read_text(encoding="utf-8").count("\n") == 3
    assert len(await wait_for(lambda: _at_least(db, niks, 72))) == 72

    again = await asyncio.to_thread(_upload, csv_file, settings)  # the same file twice
    assert again.returncode == 0
    await handled(settings)  # the second upload went through every service
    assert len(await active_months(db, niks)) == 72
