"""The upload templates shipped in ``deploy/templates``: one CSV, one XLSX.

Regenerate them with ``python -m services.adapters.templates``; the output is byte for
byte the same on every run (fixed timestamps, uncompressed zip entries), so the files in
the repository can be checked against this code.
"""

from __future__ import annotations

import csv
import io
import re
import sys
import zipfile
from datetime import datetime
from pathlib import Path

from schemas.events import Category
from services.domain.columns import COLUMNS, EXAMPLE_ROW

TEMPLATE_DIR = Path(__file__).resolve().parents[2] / "deploy" / "templates"
CSV_NAME = "registrations-template.csv"
XLSX_NAME = "registrations-template.xlsx"

HELP: dict[str, str] = {
    "nik": "16 digits, as on the KTP. Keep the column formatted as Text.",
    "full_name": "Name as on the KTP: letters, spaces and . , ' - only.",
    "birth_date": "YYYY-MM-DD (1990-07-05) or DD/MM/YYYY; must match the NIK.",
    "sex": "M or F (L or P also accepted); must match the NIK (women: day + 40).",
    "category": "One of: " + ", ".join(c.value for c in Category) + ".",
    "kecamatan": "Kecamatan of the programme's city, e.g. Blimbing.",
    "kelurahan": "Kelurahan within that kecamatan, e.g. Arjosari.",
    "phone": "Optional. 0812-3456-7890 or +62 812 3456 7890.",
    "coverage_start": "First covered month, YYYY-MM (2025-12).",
    "months": "Optional, 1 to 12; empty means the programme's months (12).",
}

_FIXED_TIME = datetime(2025, 11, 25, 0, 0, 0)  # noqa: DTZ001 - stored without a zone in XLSX
_ZIP_TIME = (2025, 11, 25, 0, 0, 0)
_CORE_DATES = re.compile(rb"(<dcterms:(created|modified)[^>]*>)[^<]*(</dcterms:\2>)")


def csv_template() -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(COLUMNS)
    writer.writerow([EXAMPLE_ROW[c] for c in COLUMNS])
    return buffer.getvalue()


def xlsx_template() -> bytes:
    from openpyxl import Workbook
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter
    from openpyxl.worksheet.datavalidation import DataValidation

    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.title = "registrations"
    sheet.append(list(COLUMNS))
    sheet.append([int(EXAMPLE_ROW[c]) if c == "months" else EXAMPLE_ROW[c] for c in COLUMNS])
    for index, column in enumerate(COLUMNS, start=1):
        letter = get_column_letter(index)
        sheet.column_dimensions[letter].width = max(14, len(column) + 4)
        sheet.cell(row=1, column=index).font = Font(bold=True)
        if column != "months":  # typed as text: keeps 16-digit NIKs and leading zeros
            sheet.column_dimensions[letter].number_format = "@"
            sheet.cell(row=2, column=index).number_format = "@"
    sheet.freeze_panes = "A2"
    choices = {
        "sex": '"M,F"',
        "category": '"' + ",".join(c.value for c in Category) + '"',
    }
    for column, formula in choices.items():
        letter = get_column_letter(COLUMNS.index(column) + 1)
        validation = DataValidation(type="list", formula1=formula, allow_blank=False)
        validation.add(f"{letter}2:{letter}100000")
        sheet.add_data_validation(validation)
    notes = workbook.create_sheet("petunjuk")
    notes.append(["column", "what to type"])
    for column in COLUMNS:
        notes.append([column, HELP[column]])
    notes.append([])
    notes.append(["", "Delete the example row (Siti Aminah) before uploading: it is refused."])
    notes.column_dimensions["A"].width = 16
    notes.column_dimensions["B"].width = 90
    workbook.properties.creator = "iuran"
    workbook.properties.created = _FIXED_TIME
    buffer = io.BytesIO()
    workbook.save(buffer)
    return _reproducible(buffer.getvalue())


def _reproducible(data: bytes) -> bytes:
    """The same zip with fixed entry times, document dates and no compression."""
    source = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as target:
        for info in source.infolist():
            content = source.read(info.filename)
            if info.filename == "docProps/core.xml":
                content = _CORE_DATES.sub(rb"\g<1>2025-11-25T00:00:00Z\g<3>", content)
            entry = zipfile.ZipInfo(info.filename, date_time=_ZIP_TIME)
            entry.external_attr = 0o644 << 16
            target.writestr(entry, content)
    return out.getvalue()


def write_templates(directory: Path = TEMPLATE_DIR) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    csv_path, xlsx_path = directory / CSV_NAME, directory / XLSX_NAME
    csv_path.write_text(csv_template(), encoding="utf-8")
    xlsx_path.write_bytes(xlsx_template())
    return [csv_path, xlsx_path]


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    for path in write_templates(Path(args[0]) if args else TEMPLATE_DIR):
        sys.stdout.write(f"wrote {path}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
