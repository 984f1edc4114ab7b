"""Read an upload file (CSV or XLSX) into a :class:`~services.domain.sheet.Table` of cells,
numbered as the clerk sees them.

CSV: UTF-8 with or without a byte-order mark, UTF-16 (Excel's "Unicode text") and, as a
last resort, Windows-1252; separated by commas, semicolons (Indonesian Excel) or tabs.
XLSX: the first worksheet (or a named one), read-only, cell values as stored; a formula is
kept as a :class:`Formula` so that the row can be refused.
"""

from __future__ import annotations

import csv
import io
import logging
import zipfile
from datetime import date, datetime, time
from pathlib import Path
from typing import IO

from services.domain.sheet import (
    HEADER_SEARCH_ROWS,
    CellValue,
    Formula,
    SheetRow,
    Table,
    TableError,
    column_name,
    is_blank,
)

log = logging.getLogger(__name__)


def read_table(path: Path, *, sheet: str | None = None) -> Table:
    suffix = path.suffix.casefold()
    if not path.is_file():
        raise TableError(f"{path}: no such file")
    if suffix in (".xlsx", ".xlsm"):
        return _table(_xlsx_rows(path, sheet, path), "xlsx", path)
    if suffix == ".xls":
        raise TableError(f"{path}: old Excel .xls files are not read; save it as .xlsx or CSV")
    if sheet is not None:
        raise TableError("--sheet applies to XLSX files only")
    return _table(_csv_rows(path.read_bytes(), path), "csv", path)


def read_table_bytes(data: bytes, source: str, name: str = "upload") -> Table:
    """The same as :func:`read_table` for the bytes of an upload (``source``: "csv" or
    "xlsx"); ``name`` stands for the file in messages."""
    if source == "xlsx":
        return _table(_xlsx_rows(io.BytesIO(data), None, name), "xlsx", name)
    return _table(_csv_rows(data, name), "csv", name)


def _table(rows: list[list[CellValue]], source: str, path: Path | str) -> Table:
    header_index = _find_header(rows)
    if header_index is None:
        raise TableError(f"{path}: the file has no header row (nik, full_name, ...) and no data")
    raw_headers = rows[header_index]
    while raw_headers and is_blank(raw_headers[-1]):
        raw_headers = raw_headers[:-1]
    headers = ["" if h is None else str(h).strip() for h in raw_headers]
    columns = [column_name(h) for h in headers]
    named = [c for c in columns if c]
    duplicated = sorted({c for c in named if named.count(c) > 1})
    if duplicated:
        raise TableError(f"{path}: column(s) {', '.join(duplicated)} appear more than once")
    table_rows = []
    for index in range(header_index + 1, len(rows)):
        values = rows[index]
        cells = {
            name: values[i] if i < len(values) else None
            for i, name in enumerate(columns)
            if name
        }
        extra = [v for v in values[len(columns):] if not is_blank(v)]
        row = SheetRow(number=index + 1, cells=cells, originals=list(values), extra=extra)
        if not row.blank:
            table_rows.append(row)
    return Table(headers, columns, table_rows, header_index + 1, source)


def _find_header(rows: list[list[CellValue]]) -> int | None:
    first_filled = None
    for index, values in enumerate(rows[:HEADER_SEARCH_ROWS]):
        if all(is_blank(v) for v in values):
            continue
        if first_filled is None:
            first_filled = index
        if any(isinstance(v, str) and column_name(v) == "nik" for v in values):
            return index
    return first_filled


# --- CSV ------------------------------------------------------------------------------


def _decode(data: bytes, path: Path | str) -> str:
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    try:
        text = data.decode("cp1252")
    except UnicodeDecodeError as exc:
        raise TableError(f"{path}: not a text file in UTF-8; save it as CSV UTF-8") from exc
    log.warning("%s is not UTF-8; read it as Windows-1252 (save as 'CSV UTF-8' to be sure)",
                path.name if isinstance(path, Path) else path)
    return text


SEPARATORS = ",;\t"


def _delimiter(text: str) -> str:
    """The separator ``csv.Sniffer`` finds in the first rows; a title or a note above the
    header (a line with no separator) is left out of the sample by asking again from the
    next line. A comma when it finds none."""
    lines = text.splitlines()[:2 * HEADER_SEARCH_ROWS]
    sniffer = csv.Sniffer()
    for start in range(min(len(lines), HEADER_SEARCH_ROWS)):
        try:
            return sniffer.sniff("\n".join(lines[start:]), delimiters=SEPARATORS).delimiter
        except csv.Error:
            continue
    return ","


def _csv_rows(data: bytes, path: Path | str) -> list[list[CellValue]]:
    text = _decode(data, path)
    if "\x00" in text:
        raise TableError(f"{path}: not a CSV file (binary content); is it an XLSX renamed?")
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_delimiter(text))
    try:
        return [list(record) for record in reader]
    except csv.Error as exc:
        raise TableError(f"{path}: not a readable CSV file (row {reader.line_num}): {exc}") from exc


# --- XLSX -----------------------------------------------------------------------------


def _xlsx_rows(
    source: Path | IO[bytes], sheet: str | None, path: Path | str
) -> list[list[CellValue]]:
    from openpyxl import load_workbook  # imported here: only XLSX uploads need it

    try:
        workbook = load_workbook(source, read_only=True, data_only=False)
    except (zipfile.BadZipFile, KeyError, OSError, ValueError) as exc:
        raise TableError(f"{path}: not a readable XLSX file ({type(exc).__name__})") from exc
    try:
        if sheet is None:
            worksheet = workbook.worksheets[0]
        elif sheet in workbook.sheetnames:
            worksheet = workbook[sheet]
        else:
            raise TableError(
                f"{path}: no sheet named {sheet!r}; sheets: {', '.join(workbook.sheetnames)}"
            )
        if hasattr(worksheet, "reset_dimensions"):
            worksheet.reset_dimensions()  # a wrong stored size must not hide rows
        rows: list[list[CellValue]] = []
        for cells in worksheet.iter_rows():  # gaps come back as empty rows: numbers hold
            rows.append([_xlsx_value(cell) for cell in cells])
        return rows
    finally:
        workbook.close()


def _xlsx_value(cell: object) -> CellValue:
    value = getattr(cell, "value", None)
    if getattr(cell, "data_type", None) == "f":
        return Formula(str(getattr(value, "text", value)))
    if isinstance(value, str | int | float | bool | date | datetime | time) or value is None:
        return value
    return str(value)
