"""BPJS in the loop on the real processes (broker, ledger service, PostgreSQL, the CLI):
the submission file lists each worker once, BPJS's verdict file becomes verdicts the ledger
records once, a rejection cancels the worker's unbilled months (freeing the budget for held
workers), and records that are no verdict end as dead letters with stable codes."""

from __future__ import annotations

import asyncio
import csv
import json
import uuid
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import httpx
import pytest

from schemas.events import TOPIC_BPJS_VERIFICATIONS, BpjsVerification
from services.domain.programme import Programme, load_programmes
from services.runtime.settings import Settings
from services.runtime.stack import ServiceProcesses
from tests.support.cli import iuran_command
from tests.support.faults import GROUPS
from tests.support.gateway import (
    DISNAKER,
    base_url,
    outcomes,
    template_row,
    upload,
)
from tests.support.kafka import publish
from tests.support.ledger import NikSource, book_months, programme_copy
from tests.support.settle import handled
from tests.support.workers import registration

pytestmark = pytest.mark.integration

VERDICTS_STAGE = ((GROUPS["ledger"], TOPIC_BPJS_VERIFICATIONS),)
NIKS = NikSource(region=7)
FINANCE = {"Authorization": "Bearer iuran-dev-finance-token"}
OPS = {"Authorization": "Bearer iuran-dev-ops-token"}


def _malang() -> Programme:
    return load_programmes(Settings().programmes_dir)["malang-2025"]



def _verdict(programme: str, nik: str, status: str, at: datetime, **fields: object) -> bytes:
    values: dict[str, object] = {"verification_id": uuid.uuid4(), "programme": programme,
                                 "nik": nik, "status": status, "verified_at": at}
    if status == "verified":
        values |= {"kpj": f"25{nik[-9:]}", "effective_period": "2025-12"}
    else:
        values |= {"reason_code": "R02", "reason": "NIK tidak sesuai data Dukcapil"}
    values |= fields
    return BpjsVerification(**values).model_dump_json().encode()  # type: ignore[arg-type]


async def test_the_submission_lists_each_worker_once(
    stack: ServiceProcesses, settings: Settings, database_url: str, tmp_path: Path
) -> None:
    malang = _malang()
    first = NIKS.take(2)
    await book_months(database_url, malang, first, ["2025-12", "2026-01"])
    out = tmp_path / "kolektif.csv"
    made = await iuran_command(settings, "bpjs", "submission", "--programme", malang.id,
                        "--out", str(out), "--json")
    assert made.returncode == 0, made.stderr
    summary = json.loads(made.stdout)
    with out.open(encoding="utf-8-sig", newline="") as stream:
        rows = {r["NIK"]: r for r in csv.DictReader(stream)}
    assert set(first) <= set(rows) and summary["workers"] == len(rows)
    row = rows[first[0]]
    assert (row["PROGRAM"], row["PENGHASILAN"], row["MULAI KEPESERTAAN"]) == (
        "JKK+JKM", "1000000", "2025-12")
    assert row["NO REFERENSI"].startswith("IUR-") and row["JENIS KELAMIN"] in ("L", "P")
    assert len({r["NO REFERENSI"] for r in rows.values()}) == len(rows)

    later = NIKS.take(1)
    await book_months(database_url, malang, later, ["2026-01"])
    again = tmp_path / "kolektif-2.xlsx"
    made = await iuran_command(settings, "bpjs", "submission", "--programme", malang.id,
                        "--out", str(again), "--json")
    assert made.returncode == 0, made.stderr
    from openpyxl import load_workbook
    sheet = load_workbook(again, read_only=True).worksheets[0]
    listed = [r[1] for r in sheet.iter_rows(min_row=2, values_only=True)]
    assert listed == later  # only the worker that is new

    for args in (("submission", "--programme", malang.id, "--out", str(tmp_path / "x.pdf")),
                 ("submission", "--programme", "nope", "--out", str(out)),
                 ("import", str(tmp_path / "missing.csv"), "--programme", malang.id),
                 ("bill", "import", str(out), "--programme", malang.id)):  # not a bill file
        bad = await iuran_command(settings, "bpjs", *args)
        assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1, bad.stderr


async def test_the_verdict_file_records_kpjs_and_reasons_and_rejections_cancel_months(
    stack: ServiceProcesses, settings: Settings, database_url: str, db: asyncpg.Pool,
    tmp_path: Path
) -> None:
    malang = _malang()
    accepted, refused = NIKS.take(2)
    await book_months(database_url, malang, [accepted, refused], ["2025-12", "2026-01"])
    file = tmp_path / "hasil-verifikasi.csv"
    file.write_text(
        "NO REFERENSI;NIK;NO KPJ;STATUS;TMT;KODE ALASAN;KETERANGAN;TGL VERIFIKASI\n"
        f"IUR-1;{accepted};25110000001;DITERIMA;01/12/2025;;;2025-12-05\n"
        f"IUR-2;{refused};;DITOLAK;;R02;NIK tidak sesuai data Dukcapil;2025-12-05\n"
        "IUR-3;12345;;DITOLAK;;R01;Alamat tidak jelas;2025-12-05\n"
        f"IUR-4;{accepted};;MUNGKIN;;;;2025-12-05\n"
        f"IUR-5;{refused};;DITERIMA;2025-12;;;2025-12-05\n"
        f"IUR-6;{refused};;DITOLAK;;R01;Alamat tidak jelas;kemarin\n",
        encoding="utf-8")
    imported = await iuran_command(settings, "bpjs", "import", str(file), "--programme", malang.id)
    assert imported.returncode == 1, imported.stderr
    errors = imported.stderr.strip().splitlines()
    assert [line.split(":")[0:2] for line in errors] == [
        ["row 4", " invalid_row"], ["row 5", " invalid_status"], ["row 6", " invalid_row"],
        ["row 7", " invalid_date"]]
    assert "published 2 verdict(s)" in imported.stdout
    await handled(settings, VERDICTS_STAGE)

    members = {r["nik"]: r for r in await db.fetch(
        "SELECT * FROM finance.bpjs_members WHERE nik = ANY($1::text[])", [accepted, refused])}
    assert (members[accepted]["status"], members[accepted]["kpj"],
            members[accepted]["effective_period"]) == ("verified", "25110000001", "2025-12")
    assert (members[refused]["status"], members[refused]["reason_code"],
            members[refused]["reason"]) == ("rejected", "R02", "NIK tidak sesuai data Dukcapil")
    statuses = await db.fetch("SELECT nik, status FROM finance.contributions "
                              "WHERE nik = ANY($1::text[]) ORDER BY nik, period",
                              [accepted, refused])
    assert {(r["nik"], r["status"]) for r in statuses} == {
        (accepted, "booked"), (refused, "cancelled")}

    # the OPD sees BPJS's reason on its worker; finance sees the KPJ, ops a masked NIK
    async with httpx.AsyncClient(base_url=base_url(settings), timeout=30) as client:
        seen = (await client.get(f"/v1/workers/{refused}", headers=DISNAKER)).json()
        assert (seen["bpjs_status"], seen["bpjs_reason_code"], seen["bpjs_reason"]) == (
            "rejected", "R02", "NIK tidak sesuai data Dukcapil")
        assert seen["status"] == "stopped"
        seen = (await client.get(f"/v1/workers/{accepted}", headers=DISNAKER)).json()
        assert (seen["bpjs_status"], seen["bpjs_kpj"]) == ("verified", "25110000001")
        listed = await client.get("/bpjs/members", params={"programme": malang.id,
                                                           "status": "verified"},
                                  headers=FINANCE)
        assert listed.status_code == 200, listed.text
        assert accepted in {r["nik"] for r in listed.json()["items"]}
        masked = await client.get("/bpjs/members", params={"programme": malang.id},
                                  headers=OPS)
        assert masked.status_code == 200 and not any(
            r["nik"] in (accepted, refused) for r in masked.json()["items"])
        bad = await client.get("/bpjs/members", params={"status": "maybe"}, headers=FINANCE)
        assert bad.status_code == 422

    # finance exports the members with BPJS's reasons; the read is in the access log
    exported = tmp_path / "anggota.csv"
    done = await iuran_command(settings, "export", "bpjs_members", "--programme", malang.id,
                        "--status", "rejected", "--out", str(exported))
    assert done.returncode == 0, done.stderr
    text = exported.read_text(encoding="utf-8-sig")
    assert refused in text and "NIK tidak sesuai data Dukcapil" in text and accepted not in text
    assert await db.fetchval(
        "SELECT count(*) FROM privacy.personal_data_access WHERE $1 = ANY(niks) "
        "AND what = 'iuran export bpjs_members'", refused) == 1

    # the person's record, as the data protection officer reads it, holds BPJS's verdict
    subject = await iuran_command(settings, "privacy", "subject", refused, "--json",
                           "--purpose", "access request")
    assert subject.returncode == 0, subject.stderr
    verdicts = json.loads(subject.stdout)["bpjs_verdicts"]
    assert [(v["status"], v["reason"], v["standing"]) for v in verdicts] == [
        ("rejected", "NIK tidak sesuai data Dukcapil", True)]

    # importing the same file again records nothing twice
    again = await iuran_command(settings, "bpjs", "import", str(file), "--programme", malang.id)
    assert again.returncode == 1
    await handled(settings, VERDICTS_STAGE)
    assert await db.fetchval("SELECT count(*) FROM ledger.bpjs_verifications "
                             "WHERE nik = ANY($1::text[])", [accepted, refused]) == 2

    # neither is listed for submission again: one is verified, the other's months are
    # cancelled until its OPD sends it again
    listed = await iuran_command(settings, "bpjs", "submission", "--programme", malang.id,
                          "--out", str(tmp_path / "lagi.csv"))
    assert listed.returncode == 0, listed.stderr
    text = (tmp_path / "lagi.csv").read_text(encoding="utf-8-sig")
    assert accepted not in text and refused not in text


async def test_a_rejection_frees_the_budget_for_held_workers_and_the_latest_verdict_stands(
    stack: ServiceProcesses, settings: Settings, database_url: str, db: asyncpg.Pool
) -> None:
    programme = programme_copy(_malang(), budget_idr=2 * 16_800)
    rejected, verified, held = NIKS.take(3)
    await book_months(database_url, programme, [rejected, verified, held], ["2025-12"])
    assert await db.fetchval("SELECT status FROM finance.contributions WHERE nik = $1",
                             held) == "held"
    day = datetime(2025, 12, 5, 9, tzinfo=UTC)
    rejection = _verdict(programme.id, rejected, "rejected", day)
    marker = uuid.uuid4().hex
    reused_id = uuid.uuid4()
    await publish(settings, TOPIC_BPJS_VERIFICATIONS, [
        (rejected.encode(), rejection), (rejected.encode(), rejection),  # a redelivery
        (verified.encode(), _verdict(programme.id, verified, "verified", day)),
        # an older rejection of the verified worker arrives later: it does not stand
        (verified.encode(), _verdict(programme.id, verified, "rejected",
                                     datetime(2025, 12, 1, tzinfo=UTC))),
        (held.encode(), _verdict(programme.id, held, "verified", day,
                                 verification_id=reused_id)),
        (held.encode(), _verdict(programme.id, held, "rejected", day,
                                 verification_id=reused_id)),
        (b"x", json.dumps({"verification_id": marker, "status": "verified"}).encode()),
    ])
    await handled(settings, VERDICTS_STAGE)

    months = {r["nik"]: r["status"] for r in await db.fetch(
        "SELECT nik, status FROM finance.contributions WHERE programme = $1", programme.id)}
    assert months == {rejected: "cancelled", verified: "booked", held: "booked"}
    members = {r["nik"]: r["status"] for r in await db.fetch(
        "SELECT nik, status FROM finance.bpjs_members WHERE programme = $1", programme.id)}
    assert members == {rejected: "rejected", verified: "verified", held: "verified"}
    history = await db.fetch("SELECT status, standing FROM finance.bpjs_verdicts "
                             "WHERE nik = $1 ORDER BY verified_at", verified)
    assert [tuple(r) for r in history] == [("rejected", False), ("verified", True)]
    assert await db.fetchval("SELECT count(*) FROM ledger.bpjs_verifications WHERE nik = $1",
                             rejected) == 1

    dead = await db.fetch(
        "SELECT reason FROM ledger.dead_letters WHERE topic = $1 AND "
        "(key = $2 OR position($3 in convert_from(value, 'UTF8')) > 0)",
        TOPIC_BPJS_VERIFICATIONS, held.encode(), marker)
    assert sorted(r["reason"] for r in dead) == [
        "malformed_verification", "verification_id_reused"]

    # the ledger's gauges count the programme's workers by BPJS's verdict
    wanted = [f'iuran_bpjs_workers{{programme="{programme.id}",status="{status}"}} {n}'
              for status, n in (("verified", "2.0"), ("rejected", "1.0"), ("awaiting", "0.0"))]
    url = f"http://{settings.http_host}:{settings.port_of('ledger')}/metrics"
    async with httpx.AsyncClient(timeout=10) as client:
        for _ in range(60):  # the gauges are refreshed every 10 s
            text = (await client.get(url)).text
            if all(line in text for line in wanted):
                break
            await asyncio.sleep(0.5)
    assert all(line in text for line in wanted), [line for line in wanted if line not in text]


async def test_the_opd_sees_bpjs_reason_on_its_upload_row_and_event(
    stack: ServiceProcesses, settings: Settings, db: asyncpg.Pool
) -> None:
    worker = registration(opd_code="DISNAKER")
    async with httpx.AsyncClient(base_url=base_url(settings), timeout=30) as client:
        submission_id, (row,) = await upload(client, [template_row(worker)], DISNAKER)
        assert row["status"] == "booked" and row["bpjs_status"] is None  # awaiting BPJS

        nik = worker.worker.nik  # BPJS judges the registration after it was sent
        await publish(settings, TOPIC_BPJS_VERIFICATIONS, [(nik.encode(), _verdict(
            "malang-2025", nik, "rejected", settings.now(),
            reason_code="R01", reason="Alamat tidak jelas (RT/RW tidak ada)"))])
        await handled(settings, VERDICTS_STAGE)

        (row,) = (await outcomes(client, submission_id, DISNAKER))["rows"]
        assert (row["bpjs_status"], row["bpjs_reason_code"], row["bpjs_reason"]) == (
            "rejected", "R01", "Alamat tidak jelas (RT/RW tidak ada)")
        event = (await client.get(f"/v1/events/{row['event_id']}", headers=DISNAKER)).json()
        assert event["bpjs_reason"] == "Alamat tidak jelas (RT/RW tidak ada)"
        assert {r["status"] for r in await db.fetch(
            "SELECT status FROM finance.contributions WHERE nik = $1", nik)} == {"cancelled"}
        page = await client.get("/opd")
        assert page.status_code == 200 and "BPJS menolak" in page.text

        # the OPD corrects the data and sends the worker again: enrolled anew for the months
        _, (row,) = await upload(client, [template_row(worker, phone="081299990001")],
                                 DISNAKER)
        assert (row["status"], len(row["booked_periods"])) == ("booked", 12), row
    months = await db.fetch("SELECT status, generation FROM finance.contributions "
                            "WHERE nik = $1 AND period = '2025-12'", nik)
    assert sorted((r["status"], r["generation"]) for r in months) == [
        ("booked", 1), ("cancelled", 0)]
