"""BPJS's returned files as v1 events, row by row: the verification result (one verdict per
worker) and the bill (one line per worker and month). A row that cannot be read is reported
with its number, a stable code and a one-line message; the other rows are kept.

Column names as BPJS writes them (any case, spaces or underscores; see docs/bpjs.md):
verdicts ``NIK``, ``NO KPJ``, ``STATUS``, ``TMT`` (first covered month), ``KODE ALASAN``,
``KETERANGAN`` (BPJS's reason), ``TGL VERIFIKASI``, and optionally ``NO REFERENSI``;
bills ``NO TAGIHAN``, ``TGL TAGIHAN``, ``NIK``, ``NO KPJ``, ``PERIODE``, ``JKK``, ``JKM``,
``JHT`` (optional), ``JUMLAH``.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import ValidationError

from schemas.events import BpjsBill, BpjsBillLine, BpjsVerification
from services.domain.sheet import CellValue, Formula, SheetRow, Table, TableError, cell_text

# A verdict's id is derived from what it says: importing the same file again publishes the
# same ids, and the ledger takes each verdict once.
_NAMESPACE = uuid.UUID("6d3c8a3e-2f0e-5b7a-9c61-0b1f5a7e4d21")

# Column names (as normalised by sheet.column_name) in the words BPJS's files use.
VERDICT_ALIASES = {
    "kpj": "kpj", "no_kpj": "kpj", "nomor_kpj": "kpj",
    "status": "status", "status_verifikasi": "status", "hasil_verifikasi": "status",
    "tmt": "effective_period", "tmt_kepesertaan": "effective_period",
    "mulai_kepesertaan": "effective_period",
    "kode_alasan": "reason_code", "kode_penolakan": "reason_code",
    "keterangan": "reason", "alasan": "reason", "alasan_penolakan": "reason",
    "tgl_verifikasi": "verified_at", "tanggal_verifikasi": "verified_at",
    "no_referensi": "reference", "nik": "nik",
}
BILL_ALIASES = {
    "no_tagihan": "bill_id", "nomor_tagihan": "bill_id",
    "tgl_tagihan": "issued_at", "tanggal_tagihan": "issued_at",
    "nik": "nik", "kpj": "kpj", "no_kpj": "kpj", "nomor_kpj": "kpj",
    "periode": "period", "bulan": "period", "months": "period",
    "jkk": "jkk", "iuran_jkk": "jkk", "jkm": "jkm", "iuran_jkm": "jkm",
    "jht": "jht", "iuran_jht": "jht",
    "jumlah": "amount", "total": "amount", "jumlah_iuran": "amount",
}
VERDICT_REQUIRED = ("nik", "status", "verified_at")
BILL_REQUIRED = ("bill_id", "issued_at", "nik", "period", "jkk", "jkm", "amount")

VERIFIED_WORDS = {"verified", "diterima", "sesuai", "terverifikasi", "valid", "lolos"}
REJECTED_WORDS = {"rejected", "ditolak", "tidak_sesuai", "tidak_valid", "gagal",
                  "tidak_lolos"}

# Stable codes of a row that cannot be read.
MISSING_VALUE = "missing_value"
INVALID_STATUS = "invalid_status"
INVALID_DATE = "invalid_date"
INVALID_PERIOD = "invalid_period"
INVALID_AMOUNT = "invalid_amount"
INVALID_ROW = "invalid_row"  # the row does not make a v1 event (the message says why)
FORMULA = "formula_not_allowed"
DUPLICATE_ROW = "duplicate_row"


@dataclass(frozen=True)
class RowError:
    row: int
    code: str
    message: str

    def line(self) -> str:
        return f"row {self.row}: {self.code}: {self.message}"


@dataclass
class Read:
    events: list[Any] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    rows: int = 0


class _Bad(Exception):  # noqa: N818 - a verdict on one row
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def _cells(row: SheetRow, aliases: dict[str, str]) -> dict[str, CellValue]:
    cells: dict[str, CellValue] = {}
    for name, value in row.cells.items():
        if isinstance(value, Formula):
            raise _Bad(FORMULA, f"column {name} holds a formula; save the values only")
        key = aliases.get(name)
        if key is not None:
            cells[key] = value
    return cells


def _check_columns(table: Table, aliases: dict[str, str], required: tuple[str, ...],
                   what: str) -> None:
    present = {aliases.get(c) for c in table.columns}
    missing = [r for r in required if r not in present]
    if missing:
        raise TableError(f"the {what} file lacks column(s) {', '.join(missing)} "
                         f"(headers found: {', '.join(h for h in table.headers if h)})")


def _text(cells: dict[str, CellValue], key: str, *, required: bool = False) -> str | None:
    text = cell_text(cells.get(key)).strip()
    if not text:
        if required:
            raise _Bad(MISSING_VALUE, f"{key} is empty")
        return None
    return text


def _digits(cells: dict[str, CellValue], key: str, *, required: bool = False) -> str | None:
    """A number written as text or as a spreadsheet number (a NIK or a KPJ)."""
    value = cells.get(key)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = _text({key: value}, key, required=required)
    return None if text is None else text.replace(" ", "").lstrip("'")


_PERIOD_FORMS = (
    (re.compile(r"^(\d{4})-(\d{1,2})(?:-\d{1,2})?$"), 1, 2),
    (re.compile(r"^(\d{1,2})[-/](\d{4})$"), 2, 1),
    (re.compile(r"^\d{1,2}[-/](\d{1,2})[-/](\d{4})$"), 2, 1),
)


def _period(value: CellValue, what: str) -> str:
    if isinstance(value, datetime | date):
        return f"{value.year:04d}-{value.month:02d}"
    text = cell_text(value).strip()
    for pattern, year_group, month_group in _PERIOD_FORMS:
        found = pattern.match(text)
        if found:
            year, month = int(found.group(year_group)), int(found.group(month_group))
            if 1 <= month <= 12:
                return f"{year:04d}-{month:02d}"
    raise _Bad(INVALID_PERIOD, f"{what} {text!r} is not a month (YYYY-MM, MM/YYYY or a date)")


def _moment(value: CellValue, zone: ZoneInfo, what: str) -> datetime:
    """A date or date-time cell as a moment in the programme's time zone."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=zone)
    if isinstance(value, date):
        return datetime.combine(value, time(0), zone)
    text = cell_text(value).strip()
    for form in ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d",
                 "%d/%m/%Y %H:%M", "%d/%m/%Y", "%d-%m-%Y"):
        try:
            return datetime.strptime(text, form).replace(tzinfo=zone)
        except ValueError:
            continue
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise _Bad(INVALID_DATE, f"{what} {text!r} is not a date (YYYY-MM-DD or "
                                 "DD/MM/YYYY)") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=zone)


def _rupiah(cells: dict[str, CellValue], key: str, *, required: bool = True) -> int | None:
    value = cells.get(key)
    if isinstance(value, bool):
        raise _Bad(INVALID_AMOUNT, f"{key} is not an amount")
    if isinstance(value, int):
        amount = value
    elif isinstance(value, float) and value.is_integer():
        amount = int(value)
    else:
        text = cell_text(value).strip().replace("Rp", "").replace(" ", "")
        if not text:
            if required:
                raise _Bad(MISSING_VALUE, f"{key} is empty")
            return None
        # Indonesian thousands separators (16.800) or English ones (16,800); no cents
        cleaned = re.sub(r"[.,](?=\d{3}(?:\D|$))", "", text)
        if not cleaned.isdigit():
            raise _Bad(INVALID_AMOUNT, f"{key} {text!r} is not a whole rupiah amount")
        amount = int(cleaned)
    if amount < 0:
        raise _Bad(INVALID_AMOUNT, f"{key} {amount} is negative")
    return amount


def _first_error(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "row"
    return f"{where}: {first['msg']}"


def _status(text: str) -> str:
    word = re.sub(r"[^a-z]+", "_", text.casefold()).strip("_")
    if word in VERIFIED_WORDS:
        return "verified"
    if word in REJECTED_WORDS:
        return "rejected"
    raise _Bad(INVALID_STATUS, f"STATUS {text!r} is neither DITERIMA (verified) nor "
                               "DITOLAK (rejected)")


def verification(cells: dict[str, CellValue], programme: str, zone: ZoneInfo
                 ) -> BpjsVerification:
    """One verdict row as an event (raises _Bad)."""
    status = _status(_text(cells, "status", required=True) or "")
    nik = _digits(cells, "nik", required=True)
    kpj = _digits(cells, "kpj")
    effective = cells.get("effective_period")
    period = None if cell_text(effective).strip() == "" else _period(effective, "TMT")
    _text(cells, "verified_at", required=True)
    verified_at = _moment(cells.get("verified_at"), zone, "TGL VERIFIKASI")
    reason_code, reason = _text(cells, "reason_code"), _text(cells, "reason")
    if status == "verified":
        reason_code = reason = None  # a verified worker has no reason
    else:
        kpj = period = None
        if reason is not None and reason_code is None:
            reason_code = "lainnya"  # BPJS gave words without a code
    fields = [programme, nik, status, kpj, period, reason_code, reason,
              verified_at.isoformat()]
    verification_id = uuid.uuid5(_NAMESPACE, "|".join(str(f) for f in fields))
    try:
        return BpjsVerification.model_validate({
            "verification_id": verification_id, "programme": programme, "nik": nik,
            "status": status, "kpj": kpj, "effective_period": period,
            "reason_code": reason_code, "reason": reason, "verified_at": verified_at})
    except ValidationError as exc:
        raise _Bad(INVALID_ROW, _first_error(exc)) from None


def _each(table: Table, aliases: dict[str, str], read: Read,
          take: Callable[[dict[str, CellValue], int], None]) -> None:
    for row in table.rows:
        read.rows += 1
        try:
            take(_cells(row, aliases), row.number)
        except _Bad as exc:
            read.errors.append(RowError(row.number, exc.code, str(exc)))


def read_verifications(table: Table, programme: str, zone: ZoneInfo) -> Read:
    """The verdicts of BPJS's verification file (raises TableError when columns lack)."""
    _check_columns(table, VERDICT_ALIASES, VERDICT_REQUIRED, "verification")
    read = Read()
    seen: dict[str, int] = {}

    def take(cells: dict[str, CellValue], number: int) -> None:
        event = verification(cells, programme, zone)
        key = str(event.verification_id)
        if key in seen:
            raise _Bad(DUPLICATE_ROW, f"the same verdict as row {seen[key]}")
        seen[key] = number
        read.events.append(event)

    _each(table, VERDICT_ALIASES, read, take)
    return read


def read_bill(table: Table, programme: str, zone: ZoneInfo) -> Read:
    """BPJS's bill file as one BpjsBill per NO TAGIHAN; a wrong line is reported and left
    out of its bill (raises TableError when columns lack)."""
    _check_columns(table, BILL_ALIASES, BILL_REQUIRED, "bill")
    read = Read()
    bills: dict[str, tuple[datetime, list[BpjsBillLine]]] = {}

    def take(cells: dict[str, CellValue], _number: int) -> None:
        bill_id = _text(cells, "bill_id", required=True) or ""
        issued_at = _moment(cells.get("issued_at"), zone, "TGL TAGIHAN")
        try:
            line = BpjsBillLine.model_validate({
                "nik": _digits(cells, "nik", required=True), "kpj": _digits(cells, "kpj"),
                "period": _period(cells.get("period"), "PERIODE"),
                "jkk_idr": _rupiah(cells, "jkk"), "jkm_idr": _rupiah(cells, "jkm"),
                "jht_idr": _rupiah(cells, "jht", required=False),
                "amount_idr": _rupiah(cells, "amount")})
        except ValidationError as exc:
            raise _Bad(INVALID_ROW, _first_error(exc)) from None
        known = bills.setdefault(bill_id, (issued_at, []))
        known[1].append(line)

    _each(table, BILL_ALIASES, read, take)
    for bill_id, (issued_at, lines) in bills.items():
        read.events.append(BpjsBill(bpjs_bill_id=bill_id, programme=programme,
                                    period=min(line.period for line in lines),
                                    issued_at=issued_at, lines=lines))
    return read
