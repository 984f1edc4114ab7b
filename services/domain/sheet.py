"""An upload sheet as rows of cells, numbered as the clerk sees them: the plain values the
row rules read (:mod:`services.domain.rows`), whatever file they came from
(:mod:`services.adapters.tables` reads CSV and XLSX into them)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, time

HEADER_SEARCH_ROWS = 20  # a title or a note may stand above the header


class TableError(ValueError):
    """The file as a whole cannot be read: wrong format, no header, missing columns."""


@dataclass(frozen=True, slots=True)
class Formula:
    """A spreadsheet cell that holds a formula instead of a value."""

    text: str


CellValue = str | int | float | bool | date | datetime | time | Formula | None


@dataclass(slots=True)
class SheetRow:
    number: int  # the row number in the spreadsheet (the header is usually row 1)
    cells: dict[str, CellValue]  # by column name, as normalised by ``column_name``
    originals: list[CellValue]  # every value of the row, in file order
    extra: list[CellValue] = field(default_factory=list)  # values right of the header

    @property
    def blank(self) -> bool:
        return all(is_blank(v) for v in self.originals)


@dataclass(slots=True)
class Table:
    headers: list[str]  # as written in the file
    columns: list[str]  # normalised names, same order
    rows: list[SheetRow]
    header_row: int
    source: str  # "csv" | "xlsx"


# Column names in other words clerks use (Indonesian and spaced forms).
ALIASES: dict[str, str] = {
    "nama": "full_name",
    "nama_lengkap": "full_name",
    "name": "full_name",
    "tanggal_lahir": "birth_date",
    "tgl_lahir": "birth_date",
    "jenis_kelamin": "sex",
    "kategori": "category",
    "kelurahan_desa": "kelurahan",
    "desa": "kelurahan",
    "no_hp": "phone",
    "nomor_hp": "phone",
    "telepon": "phone",
    "mulai": "coverage_start",
    "bulan": "months",
    "jumlah_bulan": "months",
}


def column_name(header: str) -> str:
    """'Full Name ' -> 'full_name'; Indonesian aliases map to the template's names."""
    text = re.sub(r"[^0-9a-z]+", "_", header.replace("\ufeff", "").strip().casefold()).strip("_")
    return ALIASES.get(text, text)


def is_blank(value: CellValue) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def cell_text(value: CellValue) -> str:
    """A cell as text for messages and the rejects file."""
    if value is None:
        return ""
    if isinstance(value, Formula):
        return value.text
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == time(0) else value.isoformat()
    if isinstance(value, date | time):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
