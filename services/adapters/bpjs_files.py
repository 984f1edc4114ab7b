"""BPJS's files: writing the collective-registration list (CSV or XLSX) and reading BPJS's
returned verdicts and bills (CSV or XLSX, header names as BPJS writes them) into table rows
(:func:`services.adapters.tables.read_table`)."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

FORMATS = ("csv", "xlsx")


def file_format(path: Path) -> str | None:
    suffix = path.suffix.casefold().lstrip(".")
    return suffix if suffix in FORMATS else None


def write_rows(path: Path, headers: Sequence[str], rows: Iterable[Sequence[Any]],
               sheet: str = "Pendaftaran") -> None:
    """Write a header row and the rows to ``path`` (.csv: UTF-8 with a byte-order mark so
    Excel reads it; .xlsx: one worksheet, every cell as text except numbers)."""
    if file_format(path) == "xlsx":
        from openpyxl import Workbook  # imported here: only XLSX files need it

        workbook = Workbook(write_only=True)
        worksheet = workbook.create_sheet(sheet)
        worksheet.append(list(headers))
        for row in rows:
            # a NIK or a phone is text: Excel must not turn it into a rounded number
            worksheet.append([v if isinstance(v, int) else str(v) for v in row])
        workbook.save(path)
        return
    with path.open("w", encoding="utf-8-sig", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(headers)
        writer.writerows(rows)
