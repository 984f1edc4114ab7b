"""BPJS's files read row by row: the documented examples, BPJS's spellings, and one stable
code per bad row with the other rows kept."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.adapters.tables import read_table
from services.bpjs import files
from services.domain.sheet import TableError
from tests.support.workers import WIB

TEMPLATES = Path(__file__).resolve().parents[2] / "deploy" / "templates"


def test_the_documented_verdict_example_reads_as_verdicts() -> None:
    read = files.read_verifications(read_table(TEMPLATES / "bpjs-verification-example.csv"),
                                    "malang-2025", WIB)
    assert read.errors == []
    verified, nik_mismatch, address = read.events
    assert (verified.status, verified.kpj, verified.effective_period) == (
        "verified", "25110000001", "2025-12")
    assert verified.verified_at.isoformat() == "2025-12-05T00:00:00+07:00"
    assert (nik_mismatch.status, nik_mismatch.reason_code, nik_mismatch.reason) == (
        "rejected", "R02", "NIK tidak sesuai dengan data Dukcapil")
    assert address.kpj is None and address.reason == "Alamat tidak jelas"


def test_the_same_row_gives_the_same_verdict_id_and_a_changed_row_another(tmp_path: Path) -> None:
    file = tmp_path / "v.csv"
    file.write_text("NIK,NO KPJ,STATUS,TMT,TGL VERIFIKASI\n"
                    "3573015205900001,25110000001,verified,2025-12,2025-12-05\n",
                    encoding="utf-8")
    first = files.read_verifications(read_table(file), "p", WIB)
    again = files.read_verifications(read_table(file), "p", WIB)
    other = files.read_verifications(read_table(file), "q", WIB)
    assert first.events[0].verification_id == again.events[0].verification_id
    assert first.events[0].verification_id != other.events[0].verification_id


@pytest.mark.parametrize(("row", "code"), [
    ("12345,251100001,DITERIMA,2025-12,2025-12-05", files.INVALID_ROW),
    ("3573015205900001,251100001,MUNGKIN,2025-12,2025-12-05", files.INVALID_STATUS),
    ("3573015205900001,251100001,DITERIMA,2025-13,2025-12-05", files.INVALID_PERIOD),
    ("3573015205900001,251100001,DITERIMA,2025-12,kemarin", files.INVALID_DATE),
    ("3573015205900001,,DITERIMA,2025-12,2025-12-05", files.INVALID_ROW),
    (",251100001,DITERIMA,2025-12,2025-12-05", files.MISSING_VALUE),
])
def test_a_bad_verdict_row_has_a_code_and_the_good_rows_are_kept(
    tmp_path: Path, row: str, code: str
) -> None:
    file = tmp_path / "v.csv"
    file.write_text("NIK,KPJ,STATUS,TMT,TGL VERIFIKASI\n"
                    "3573020303850012,25110000002,Diterima,12/2025,05/12/2025\n"
                    f"{row}\n", encoding="utf-8")
    read = files.read_verifications(read_table(file), "malang-2025", WIB)
    assert [(e.row, e.code) for e in read.errors] == [(3, code)]
    assert [e.nik for e in read.events] == ["3573020303850012"]
    assert read.errors[0].line().startswith(f"row 3: {code}: ")


def test_a_verdict_file_without_its_columns_is_refused(tmp_path: Path) -> None:
    file = tmp_path / "v.csv"
    file.write_text("NIK,NAMA\n3573015205900001,Siti\n", encoding="utf-8")
    with pytest.raises(TableError, match="status, verified_at"):
        files.read_verifications(read_table(file), "malang-2025", WIB)


def test_the_documented_bill_example_reads_as_one_bill_with_its_lines() -> None:
    read = files.read_bill(read_table(TEMPLATES / "bpjs-bill-example.csv"), "malang-2025", WIB)
    assert read.errors == []
    (bill,) = read.events
    assert (bill.bpjs_bill_id, bill.period, len(bill.lines)) == ("TAG-2025-12-0001", "2025-12", 2)
    assert [(line.jkk_idr, line.jkm_idr, line.amount_idr) for line in bill.lines] == [
        (10_000, 6_800, 16_800), (5_000, 3_400, 8_400)]


@pytest.mark.parametrize(("cells", "code"), [
    ("2025-12,10000,6800,,99999", files.INVALID_ROW),  # the parts do not add up
    ("2025-12,10000,-6800,,3200", files.INVALID_AMOUNT),
    ("2025-12,10000,6800,,16800.5", files.INVALID_AMOUNT),
    ("desember,10000,6800,,16800", files.INVALID_PERIOD),
    ("2025-12,10000,6800,2000,18800", None),  # JHT added: a line, flagged by reconciliation
])
def test_a_bad_bill_line_has_a_code(tmp_path: Path, cells: str, code: str | None) -> None:
    file = tmp_path / "b.csv"
    file.write_text("NO TAGIHAN,TGL TAGIHAN,NIK,PERIODE,JKK,JKM,JHT,JUMLAH\n"
                    f"T1,2025-12-10,3573015205900001,{cells}\n", encoding="utf-8")
    read = files.read_bill(read_table(file), "malang-2025", WIB)
    assert [e.code for e in read.errors] == ([code] if code else [])
    assert len(read.events) == (0 if code else 1)
