"""``iuran publish`` without a broker: what a clerk's CSV or XLSX becomes, which rows are
refused with which row number and why, and that the same file never books twice."""

from __future__ import annotations

import argparse
import csv
import io
import json
import stat
from collections.abc import Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from openpyxl import Workbook, load_workbook

from schemas.events import WorkerRegistered, parse_registration
from services.adapters.tables import read_table
from services.adapters.templates import (
    CSV_NAME,
    TEMPLATE_DIR,
    XLSX_NAME,
    csv_template,
    xlsx_template,
)
from services.cli.main import CliError
from services.cli.publish import run
from services.domain import errors as E
from services.domain.columns import COLUMNS, EXAMPLE_ROW
from services.domain.nik import encode_nik
from services.domain.programme import load_programmes
from services.domain.rows import UploadPlan, plan_upload
from services.domain.sheet import TableError
from services.publisher.kafka import PublishError, message_of
from services.publisher.progress import ProgressBar
from services.publisher.rejects import write_rejects
from services.runtime.settings import Settings

REPO = Path(__file__).resolve().parents[2]
MALANG = load_programmes(REPO / "deploy" / "programmes")["malang-2025"]
TODAY = date(2025, 11, 26)
UPLOADED_AT = datetime(2025, 11, 25, 2, 30, tzinfo=UTC)
HEADER = list(COLUMNS)


def worker(serial: int, **changes: str) -> dict[str, str]:
    """A valid row; every serial gives another worker (a man born 12 March 1985)."""
    row = {
        "nik": encode_nik("35", "73", "05", date(1985, 3, 12), "M", serial),
        "full_name": f"Budi Santoso {'ABCDEFGHIJKLMNOPQRSTUVWXYZ'[serial % 26]}",
        "birth_date": "1985-03-12",
        "sex": "M",
        "category": "sopir_angkot",
        "kecamatan": "Sukun",
        "kelurahan": "Bandulan",
        "phone": "0813-3000-0000",
        "coverage_start": "2025-12",
        "months": "12",
    }
    return row | changes


def write_csv(path: Path, rows: Sequence[Sequence[Any]], *, delimiter: str = ",",
              encoding: str = "utf-8") -> Path:
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=delimiter, lineterminator="\r\n").writerows(rows)
    path.write_text(buffer.getvalue(), encoding=encoding)
    return path


def as_rows(*workers: dict[str, str] | list[Any]) -> list[list[Any]]:
    return [HEADER] + [[w.get(c, "") for c in HEADER] if isinstance(w, dict) else w
                       for w in workers]


def plan(path: Path, opd: str = "DISHUB", **kwargs: Any) -> UploadPlan:
    return plan_upload(read_table(path, **kwargs), MALANG, opd, today=TODAY,
                       occurred_at=UPLOADED_AT)


def row_codes(result: UploadPlan) -> dict[int, list[tuple[str, str]]]:
    return {r.number: [(e.field, e.code) for e in r.errors] for r in result.rejected}


# --- CSV ------------------------------------------------------------------------------------

def test_a_csv_with_good_and_bad_rows_reports_each_bad_row_by_its_spreadsheet_number(
    tmp_path: Path,
) -> None:
    path = write_csv(tmp_path / "dishub.csv", as_rows(
        worker(1),                                          # row 2
        worker(2, nik="3573050312850002"[:15]),             # row 3: 15 digits
        worker(3, sex="F"),                                 # row 4
        [""] * len(HEADER),                                 # row 5: blank, skipped
        worker(4, kelurahan="Dinoyo"),                      # row 6: a Lowokwaru kelurahan
        worker(5, coverage_start="2025-08"),                # row 7
        worker(6, category="tukang_parkir"),                # row 8
        worker(7, months="13"),                             # row 9
        worker(8, full_name=""),                            # row 10
        worker(9, phone="+44 20 7946 0000"),                # row 11
        worker(10, birth_date="31/02/1985"),                # row 12
        worker(11),                                         # row 13
    ))
    result = plan(path)
    assert [r.number for r in result.accepted] == [2, 13]
    assert row_codes(result) == {
        3: [("nik", E.INVALID_NIK)],
        4: [("sex", E.NIK_SEX_MISMATCH)],
        6: [("kelurahan", E.UNKNOWN_KELURAHAN)],
        7: [("coverage_start", E.COVERAGE_BEFORE_PROGRAMME)],
        8: [("category", E.UNKNOWN_CATEGORY)],
        9: [("months", E.INVALID_MONTHS)],
        10: [("full_name", E.MISSING_FIELD)],
        11: [("phone", E.INVALID_PHONE)],
        12: [("birth_date", E.INVALID_DATE)],
    }


def test_an_indonesian_excel_csv_is_read_as_the_clerk_typed_it(tmp_path: Path) -> None:
    header = ["NIK", "Nama", "Tanggal Lahir", "Jenis Kelamin", "Kategori", "Kecamatan",
              "Kelurahan", "No HP", "coverage_start", "Bulan"]
    woman = encode_nik("35", "73", "02", date(1979, 8, 17), "F", 12)
    rows = [header, [f"'{woman}", "Dewi  Lestari", "17/08/1979", "P", "Buruh Pabrik",
                     "Kec. Kedungkandang", "kel. sawojajar", "0857 1234 5678", "12/2025", ""]]
    path = write_csv(tmp_path / "disperindag.csv", rows, delimiter=";", encoding="utf-8-sig")
    result = plan(path, "DISKOPINDAG")
    assert result.rejected == []
    (row,) = result.accepted
    event = row.event
    assert event.worker.nik == woman and event.worker.sex == "F"
    assert event.worker.full_name == "Dewi Lestari"
    assert event.worker.birth_date == date(1979, 8, 17)
    assert event.worker.category.value == "buruh_pabrik"
    assert event.worker.phone == "+6285712345678"
    assert (event.coverage_start, event.months) == ("2025-12", 12)  # empty months: 12
    assert (event.opd_code, event.programme) == ("DISKOPINDAG", "malang-2025")


def test_a_comma_inside_an_unquoted_name_is_caught_not_shifted(tmp_path: Path) -> None:
    path = tmp_path / "shifted.csv"
    good = ",".join(worker(1).values())
    shifted = ",".join(worker(2, full_name="Ahmad Fauzi, S.Pd").values())
    path.write_text(",".join(HEADER) + "\n" + good + "\n" + shifted + "\n", encoding="utf-8")
    assert row_codes(plan(path)) == {3: [("", E.WRONG_COLUMN_COUNT)]}


def test_the_same_worker_twice_in_a_file_is_refused_for_overlapping_months(
    tmp_path: Path,
) -> None:
    path = write_csv(tmp_path / "twice.csv", as_rows(
        worker(1, months="6"),
        worker(1, coverage_start="2026-06", months="6"),  # the other half of the year: fine
        worker(1, coverage_start="2026-03", months="1"),  # overlaps row 2
    ))
    result = plan(path)
    assert [r.number for r in result.accepted] == [2, 3]
    ((field, code),) = row_codes(result)[4]
    assert (field, code) == ("nik", E.DUPLICATE_IN_FILE)
    assert "row 2" in result.rejected[0].errors[0].message


def test_a_missing_column_stops_the_upload_naming_the_column(tmp_path: Path) -> None:
    rows = [[c for c in HEADER if c != "kelurahan"], ["x"] * (len(HEADER) - 1)]
    with pytest.raises(TableError, match="kelurahan"):
        plan(write_csv(tmp_path / "no-kelurahan.csv", rows))


def test_a_windows_1252_csv_is_still_read(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "ansi.csv", as_rows(worker(1, full_name="Andrés Putra")),
                     encoding="cp1252")
    (row,) = plan(path).accepted
    assert row.event.worker.full_name == "Andrés Putra"


# --- XLSX -----------------------------------------------------------------------------------

def write_xlsx(path: Path, rows: Sequence[Sequence[Any]], *, title: str | None = None) -> Path:
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    if title:
        sheet.append([title])
        sheet.append([])
    for row in rows:
        sheet.append(list(row))
    workbook.save(path)
    return path


def test_an_xlsx_with_good_and_bad_rows(tmp_path: Path) -> None:
    typed = worker(1)
    dated = worker(2) | {"birth_date": date(1985, 3, 12), "coverage_start": date(2025, 12, 1),
                         "months": 12.0, "phone": 81330000000}  # Excel dropped the 0
    numeric_nik = worker(3) | {"nik": int(worker(3)["nik"])}
    formula = worker(4) | {"full_name": '=PROPER("budi santoso")'}
    rows = as_rows(typed, dated, numeric_nik, formula, worker(5, sex="X"))
    path = write_xlsx(tmp_path / "dishub.xlsx", rows, title="Daftar pekerja rentan - Dishub")
    result = plan(path)
    # The title takes rows 1-2, the header row 3: the first worker is on row 4.
    assert [r.number for r in result.accepted] == [4, 5]
    event = result.accepted[1].event
    assert event.worker.birth_date == date(1985, 3, 12)
    assert (event.coverage_start, event.months) == ("2025-12", 12)
    assert event.worker.phone == "+6281330000000"
    assert row_codes(result) == {
        6: [("nik", E.INVALID_NIK)],
        7: [("full_name", E.FORMULA_NOT_ALLOWED)],
        8: [("sex", E.INVALID_SEX)],
    }
    nik_message = result.rejected[0].errors[0].message
    assert "Text" in nik_message and worker(3)["nik"] not in nik_message


def test_the_same_rows_in_csv_and_xlsx_get_the_same_event_ids(tmp_path: Path) -> None:
    rows = as_rows(worker(1), worker(2))
    from_csv = plan(write_csv(tmp_path / "a.csv", rows))
    from_xlsx = plan(write_xlsx(tmp_path / "a.xlsx", rows))
    assert [e.event_id for e in from_csv.events] == [e.event_id for e in from_xlsx.events]


def test_an_xlsx_sheet_can_be_chosen_and_a_wrong_name_is_explained(tmp_path: Path) -> None:
    path = write_xlsx(tmp_path / "two.xlsx", as_rows(worker(1)))
    with pytest.raises(TableError, match="Sheet"):
        read_table(path, sheet="Sheet9")
    assert len(plan(path, sheet="Sheet").accepted) == 1


def test_not_a_spreadsheet_is_a_file_error(tmp_path: Path) -> None:
    fake = tmp_path / "fake.xlsx"
    fake.write_bytes(b"not a zip")
    with pytest.raises(TableError, match="XLSX"):
        read_table(fake)
    old = tmp_path / "old.xls"
    old.write_bytes(b"\xd0\xcf\x11\xe0")
    with pytest.raises(TableError, match=".xlsx or CSV"):
        read_table(old)


# --- the same file twice books nothing twice -------------------------------------------------

def test_event_ids_come_from_the_content_so_a_second_upload_is_ignored(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "dishub.csv", as_rows(worker(1), worker(2)))
    first = plan(path)
    later = plan_upload(read_table(path), MALANG, "DISHUB", today=TODAY,
                        occurred_at=datetime(2025, 11, 27, tzinfo=UTC))
    assert [e.event_id for e in first.events] == [e.event_id for e in later.events]
    assert len({e.event_id for e in first.events}) == 2


def test_a_corrected_row_gets_a_new_event_id_and_the_others_keep_theirs(tmp_path: Path) -> None:
    before = plan(write_csv(tmp_path / "v1.csv", as_rows(worker(1), worker(2))))
    after = plan(write_csv(tmp_path / "v2.csv",
                           as_rows(worker(1), worker(2, kelurahan="Bakalan Krajan"))))
    assert before.events[0].event_id == after.events[0].event_id
    assert before.events[1].event_id != after.events[1].event_id


def test_another_opd_uploading_the_same_rows_sends_other_events(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "same.csv", as_rows(worker(1)))
    assert plan(path, "DISHUB").events[0].event_id != plan(path, "DINSOS").events[0].event_id


def test_the_kafka_message_is_keyed_by_nik_and_holds_the_contract_json(tmp_path: Path) -> None:
    (event,) = plan(write_csv(tmp_path / "one.csv", as_rows(worker(1)))).events
    key, value = message_of(event)
    assert key == worker(1)["nik"].encode()
    assert parse_registration(value) == event


# --- the templates -----------------------------------------------------------------------------

def _xlsx_content(data: bytes) -> list[Any]:
    workbook = load_workbook(io.BytesIO(data))
    return [
        (
            sheet.title,
            [[(c.value, c.number_format) for c in row] for row in sheet.iter_rows()],
            sorted((str(v.sqref), v.formula1) for v in sheet.data_validations.dataValidation),
        )
        for sheet in workbook.worksheets
    ]


def test_the_shipped_templates_are_what_the_generator_makes() -> None:
    assert (TEMPLATE_DIR / CSV_NAME).read_text(encoding="utf-8") == csv_template()
    generated = xlsx_template()
    assert generated == xlsx_template()  # reproducible: no clock in the bytes
    shipped = (TEMPLATE_DIR / XLSX_NAME).read_bytes()
    assert _xlsx_content(shipped) == _xlsx_content(generated)
    sheet = load_workbook(io.BytesIO(shipped)).worksheets[0]
    assert sheet["A2"].number_format == "@"  # the NIK column is Text: 16 digits survive


@pytest.mark.parametrize("name", [CSV_NAME, XLSX_NAME])
def test_the_template_has_the_columns_and_its_example_row_is_never_published(name: str) -> None:
    table = read_table(TEMPLATE_DIR / name)
    assert table.columns == HEADER
    result = plan_upload(table, MALANG, "DISNAKER", today=TODAY, occurred_at=UPLOADED_AT)
    assert row_codes(result) == {2: [("", E.EXAMPLE_ROW)]}


def test_the_example_row_under_another_name_is_a_valid_registration(tmp_path: Path) -> None:
    row = EXAMPLE_ROW | {"full_name": "Siti Rahayu"}
    assert len(plan(write_csv(tmp_path / "ok.csv", as_rows(row))).accepted) == 1


# --- the rejects file ----------------------------------------------------------------------------

def test_the_rejects_file_can_be_fixed_and_uploaded_again(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "dishub.csv", as_rows(
        worker(1), worker(2, kecamatan="Batu"), worker(3, phone="=HYPERLINK(1)"),
    ))
    table = read_table(path)
    result = plan_upload(table, MALANG, "DISHUB", today=TODAY, occurred_at=UPLOADED_AT)
    rejects = tmp_path / "dishub.rejected.csv"
    assert write_rejects(rejects, table, result.rejected) == 2
    assert stat.S_IMODE(rejects.stat().st_mode) == 0o600  # it holds personal data
    with rejects.open(encoding="utf-8-sig", newline="") as handle:
        lines = list(csv.DictReader(handle))
    assert [line["row"] for line in lines] == ["3", "4"]
    assert "[unknown_kecamatan]" in lines[0]["errors"]
    assert lines[1]["phone"] == "'=HYPERLINK(1)"  # never run as a formula by a spreadsheet
    lines[0]["kecamatan"] = "Sukun"
    lines[1]["phone"] = "0813 3000 0003"
    with rejects.open("w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(lines[0]))
        writer.writeheader()
        writer.writerows(lines)
    fixed = plan(rejects)
    assert fixed.rejected == [] and len(fixed.accepted) == 2


# --- the command -------------------------------------------------------------------------------

class FakeBroker:
    def __init__(self, fail: bool = False) -> None:
        self.events: list[WorkerRegistered] = []
        self.fail = fail

    async def send(self, events: Sequence[WorkerRegistered], settings: Settings, *,
                   on_sent: Any = None) -> int:
        if self.fail:
            raise PublishError("Kafka at localhost:9092 failed: timeout", 0)
        self.events.extend(events)
        if on_sent:
            on_sent(len(events))
        return len(events)


def settings(bootstrap: str | None = "localhost:9092") -> Settings:
    return Settings(_env_file=None, kafka_bootstrap=bootstrap,  # type: ignore[call-arg]
                    programmes_dir=REPO / "deploy" / "programmes")


def publish(path: Path, *extra: str, broker: FakeBroker | None = None,
            bootstrap: str | None = "localhost:9092") -> tuple[int, str, str, FakeBroker]:
    broker = broker or FakeBroker()
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers()
    from services.cli import publish as command

    command.register(sub)
    args = parser.parse_args(["publish", str(path), "--opd", "dishub",
                              "--programme", "malang-2025", *extra])
    out, err = io.StringIO(), io.StringIO()
    code = run(args, settings(bootstrap), send=broker.send, out=out, err=err, now=UPLOADED_AT)
    return code, out.getvalue(), err.getvalue(), broker


def test_one_wrong_row_publishes_nothing_and_names_the_row(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "d.csv", as_rows(worker(1), worker(2, sex="F"), worker(3)))
    code, out, err, broker = publish(path)
    assert code == 1 and broker.events == []
    assert "row 3: sex:" in err and "[nik_sex_mismatch]" in err
    assert "nothing was published" in out
    assert worker(2)["nik"] not in err and worker(2)["full_name"] not in err


def test_skip_invalid_publishes_the_good_rows_and_files_the_bad_ones(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "d.csv", as_rows(worker(1), worker(2, sex="F"), worker(3)))
    code, out, err, broker = publish(path, "--skip-invalid")
    assert [e.worker.nik for e in broker.events] == [worker(1)["nik"], worker(3)["nik"]]
    assert {e.opd_code for e in broker.events} == {"DISHUB"}  # --opd dishub, canonical
    assert code == 1 and "published 2 registration(s)" in out and "1 row(s) skipped" in out
    assert (tmp_path / "d.rejected.csv").exists()


def test_a_clean_file_is_published_in_full(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "d.csv", as_rows(*(worker(n) for n in range(1, 30))))
    code, out, _, broker = publish(path)
    assert code == 0 and len(broker.events) == 29
    assert "published 29 registration(s) to iuran.registrations.v1" in out


def test_a_dry_run_needs_no_broker_and_sends_nothing(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "d.csv", as_rows(worker(1)))
    code, out, _, broker = publish(path, "--dry-run", bootstrap=None)
    assert code == 0 and broker.events == [] and "1 of 1 row(s) would be published" in out


def test_without_a_broker_the_command_says_how_to_get_one(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "d.csv", as_rows(worker(1)))
    with pytest.raises(CliError, match=r"IURAN_KAFKA_BOOTSTRAP.*iuran up"):
        publish(path, bootstrap=None)


def test_a_broker_failure_says_that_uploading_again_is_safe(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "d.csv", as_rows(worker(1)))
    with pytest.raises(CliError, match="again is safe"):
        publish(path, broker=FakeBroker(fail=True))


@pytest.mark.parametrize(
    ("extra", "says"),
    [(["--programme", "surabaya-2025"], "malang-2025"), (["--opd", "dinkes"], "DISHUB")],
)
def test_a_wrong_opd_or_programme_is_one_line_naming_the_allowed_ones(
    tmp_path: Path, extra: list[str], says: str
) -> None:
    path = write_csv(tmp_path / "d.csv", as_rows(worker(1)))
    with pytest.raises(CliError, match=says):
        publish(path, *extra)


def test_an_empty_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(CliError, match="no worker rows"):
        publish(write_csv(tmp_path / "empty.csv", [HEADER]))


def test_the_progress_bar_draws_on_a_terminal_only() -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    screen = Terminal()
    bar = ProgressBar("publishing", 25_808, screen, interval_seconds=0)
    bar.update(12_904)
    bar.update(25_808)
    bar.close()
    assert "12,904/25,808  50%" in screen.getvalue()
    assert screen.getvalue().endswith("25,808/25,808 100%\n")
    log = io.StringIO()
    quiet = ProgressBar("publishing", 25_808, log)
    quiet.update(1)
    quiet.close()
    assert log.getvalue() == ""


def test_every_upload_error_code_is_in_the_catalogue() -> None:
    source = (REPO / "services" / "domain" / "rows.py").read_text(encoding="utf-8")
    for name in ("FORMULA_NOT_ALLOWED", "WRONG_COLUMN_COUNT", "DUPLICATE_IN_FILE",
                 "EXAMPLE_ROW"):
        assert f"E.{name}" in source and getattr(E, name) in E.CATALOGUE
    assert json.dumps(E.CATALOGUE)  # plain strings, publishable as documentation


def test_a_title_line_above_a_semicolon_header_does_not_confuse_the_reader(
    tmp_path: Path,
) -> None:
    path = tmp_path / "titled.csv"
    body = io.StringIO()
    csv.writer(body, delimiter=";", lineterminator="\n").writerows(as_rows(worker(1)))
    path.write_text("Daftar Pekerja Rentan Dishub 2025\n\n" + body.getvalue(), encoding="utf-8")
    result = plan(path)
    assert [r.number for r in result.accepted] == [4]


@pytest.mark.parametrize("delimiter", [",", ";", "\t"])
def test_the_separator_is_found_also_when_names_hold_commas(
    tmp_path: Path, delimiter: str
) -> None:
    workers = [worker(1, full_name="Siti Aminah, S.Pd"), worker(2, full_name="Budi, S.T"),
               worker(3)]
    path = write_csv(tmp_path / "separated.csv", as_rows(*workers), delimiter=delimiter)
    result = plan(path)
    assert [r.number for r in result.accepted] == [2, 3, 4], row_codes(result)
    assert result.accepted[0].event.worker.full_name == "Siti Aminah, S.Pd"
