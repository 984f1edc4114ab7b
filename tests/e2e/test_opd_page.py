"""The OPD page as a clerk uses it on a phone, in headless Chromium against the running
stack: sign in with the OPD token, choose a filled spreadsheet, see the row errors before
sending, send, watch every row's outcome, find the workers and stop one.

With IURAN_SCREENSHOT_DIR set, the screenshot of the outcomes (docs/opd-page.png) and the
rows as the page shows them (opd-page.txt) are written there."""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path

import httpx
import openpyxl
import pytest

from services.domain.columns import COLUMNS
from services.runtime.settings import Settings
from services.runtime.stack import ServiceProcesses
from tests.support.browser import CHROMIUM, phone
from tests.support.gateway import DINSOS, DISHUB, TOKENS, base_url, outcomes, template_row
from tests.support.workers import registration

pytestmark = pytest.mark.e2e

ROWS_SHOWN = """[...document.querySelectorAll('#hasil-baris tbody tr')].map(
    tr => [Number(tr.dataset.row), tr.dataset.status])"""


def spreadsheet(path: Path, rows: list[list[str]]) -> Path:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append(list(COLUMNS))
    for row in rows:
        sheet.append([int(v) if c == "months" else v for c, v in zip(COLUMNS, row, strict=True)])
    workbook.save(path)
    return path


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (make tools)")
async def test_a_clerk_uploads_a_spreadsheet_and_follows_every_row(
    stack: ServiceProcesses, settings: Settings, tmp_path: Path
) -> None:
    base = base_url(settings)
    taken = registration(opd_code="DINSOS")
    async with httpx.AsyncClient(base_url=base, timeout=60) as client:
        first = await client.post("/v1/registrations", headers=DINSOS,
                                  json=[taken.model_dump(mode="json")])
        assert first.status_code == 201, first.text
        await outcomes(client, first.json()["submission_id"], DINSOS)
    good, other = registration(opd_code="DISHUB"), registration(opd_code="DISHUB", sex="F")
    warned = registration(opd_code="DISHUB", born=date(1991, 6, 2))
    upload = spreadsheet(tmp_path / "pekerja-dishub.xlsx", [
        template_row(good),                                  # row 2
        template_row(other, months="6"),                     # row 3
        template_row(good, nik="3573", full_name="Joko"),    # row 4: not a NIK
        template_row(taken),                                 # row 5: DINSOS pays for it
        template_row(warned, birth_date="1991-06-03"),       # row 6: differs from the NIK
    ])

    async with phone() as page:
        await page.goto(f"{base}/opd")
        await page.type("token", TOKENS["DISHUB"])
        await page.click("#tombol-masuk")
        await page.wait_for("!document.getElementById('setelah-masuk').hidden")
        assert "DISHUB" in await page.evaluate("document.getElementById('siapa').textContent")

        await page.choose_file("#berkas", upload)
        await page.click("#tombol-periksa")
        await page.wait_for("document.getElementById('pesan-unggah').textContent"
                            ".includes('diperiksa')")
        checked = await page.evaluate(
            "[...document.querySelectorAll('#hasil-periksa tbody tr')].map("
            "tr => [Number(tr.dataset.row), tr.textContent])")
        assert [row for row, _ in checked] == [4]
        assert "invalid_nik" in checked[0][1]
        assert not await page.evaluate("document.getElementById('tombol-kirim').disabled")

        await page.click("#tombol-kirim")
        await page.wait_for("document.getElementById('hasil').dataset.done === 'true'")
        shown = await page.evaluate(ROWS_SHOWN)
        assert shown == [[2, "booked"], [3, "booked"], [4, "invalid"], [5, "rejected"],
                         [6, "booked"]]
        text = await page.evaluate("document.getElementById('hasil-baris').innerText")
        assert "duplicate_enrollment" in text and "nik_birth_date_mismatch" in text
        assert "Tercatat (dibayar)" in text and "Ditolak" in text
        width = await page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, f"the page is {width}px wide on a 390px screen"
        submission_id = await page.evaluate(
            "document.getElementById('pengajuan').dataset.submission")
        target = os.environ.get("IURAN_SCREENSHOT_DIR")
        if target:
            await page.screenshot(Path(target) / "opd-page.png")
            (Path(target) / "opd-page.txt").write_text(text, encoding="utf-8")

        # the same outcomes through the API
        async with httpx.AsyncClient(base_url=base, timeout=60) as client:
            api = await client.get(f"/v1/submissions/{submission_id}", headers=DISHUB)
        assert [[r["row"], r["status"]] for r in api.json()["rows"]] == shown

        # the workers list, filtered, and stopping one of them
        await page.evaluate("document.getElementById('saring-status').value = 'active'")
        await page.click("#tombol-tampilkan")
        nik = good.worker.nik
        listed = "document.querySelector('#daftar-pekerja tr[data-nik=\"{}\"]')"
        await page.wait_for(listed.format(nik))
        assert not await page.evaluate(f"Boolean({listed.format(taken.worker.nik)})")
        await page.click(f"button[data-stop=\"{nik}\"]")
        await page.evaluate("document.getElementById('berhenti-bulan').value = '2026-05'")
        await page.type("berhenti-alasan", "bekerja di sektor formal")
        await page.click("#tombol-berhenti")
        await page.wait_for("document.getElementById('hasil').dataset.done === 'true' && "
                            "document.querySelector('#hasil-baris tbody tr')?.dataset.status "
                            "=== 'cancelled'")
        stopped = await page.evaluate("document.getElementById('hasil-baris').innerText")
        assert "2026-05" in stopped
