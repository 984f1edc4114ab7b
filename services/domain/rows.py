"""Rows of an upload file -> registration events or row errors, with the domain's rules.

Pure: no broker, no clock (the caller passes ``today`` and ``occurred_at``). An event id is
derived from the row's content, so the same file uploaded twice yields the same events
(the validator ignores the second copy) and a corrected row yields a new one.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from pydantic import ValidationError

from schemas.events import (
    AnyRegistration,
    Category,
    RejectionError,
    WorkerCorrected,
    WorkerDeregistered,
    WorkerRegistered,
)
from services.domain import errors as E
from services.domain.columns import COLUMNS, EXAMPLE_ROW, OPTIONAL, REQUIRED
from services.domain.errors import rejection, rejections_from_validation_error
from services.domain.nik import nik_of
from services.domain.periods import format_period
from services.domain.places import normalise_name, normalise_phone
from services.domain.programme import Programme
from services.domain.rules import check_correction, check_deregistration, check_registration
from services.domain.schedule import covered_periods, derived_id
from services.domain.sheet import CellValue, Formula, Table, TableError

__all__ = ["COLUMNS", "RowRejection", "UploadPlan", "UploadRow", "check_columns", "check_event",
           "plan_upload"]

_SEXES = {
    "m": "M", "l": "M", "laki-laki": "M", "laki laki": "M", "lakilaki": "M", "pria": "M",
    "male": "M", "f": "F", "p": "F", "perempuan": "F", "wanita": "F", "female": "F",
}  # fmt: skip
_CATEGORIES = {c.value: c.value for c in Category}
_DAY_FIRST = re.compile(r"^(\d{1,2})[/.-](\d{1,2})[/.-](\d{4})$")
_ISO_DATE = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})$")
_MONTH_FIRST = re.compile(r"^(\d{1,2})[/.-](\d{4})$")
_ISO_MONTH = re.compile(r"^(\d{4})[-/](\d{1,2})$")
_NIK_SEPARATORS = re.compile(r"[\s.\-]+")


@dataclass(frozen=True, slots=True)
class UploadRow:
    number: int
    event: WorkerRegistered


@dataclass(frozen=True, slots=True)
class RowRejection:
    number: int
    errors: list[RejectionError]
    originals: list[CellValue]


@dataclass(slots=True)
class UploadPlan:
    accepted: list[UploadRow] = field(default_factory=list)
    rejected: list[RowRejection] = field(default_factory=list)

    @property
    def events(self) -> list[WorkerRegistered]:
        return [row.event for row in self.accepted]


class _CellError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def check_columns(table: Table) -> list[str]:
    """Raise TableError when a required column is missing; return the ignored columns."""
    missing = [c for c in REQUIRED if c not in table.columns]
    if missing:
        raise TableError(
            f"the header (row {table.header_row}) lacks column(s) {', '.join(missing)}; "
            f"expected: {', '.join(COLUMNS)} (see deploy/templates/registrations-template.csv)"
        )
    return [h for h, c in zip(table.headers, table.columns, strict=True) if c not in COLUMNS and h]


def plan_upload(
    table: Table,
    programme: Programme,
    opd_code: str,
    *,
    today: date,
    occurred_at: datetime,
    on_row: Callable[[int], None] | None = None,
) -> UploadPlan:
    """Check every row of ``table``; ``opd_code`` must already be one of the programme's."""
    check_columns(table)
    plan = UploadPlan()
    seen: dict[str, list[tuple[int, set[str]]]] = {}  # NIK -> rows and months in this file
    for done, row in enumerate(table.rows, start=1):
        if row.extra:
            errors = [rejection(
                "", E.WRONG_COLUMN_COUNT,
                f"row has {len(row.extra)} value(s) more than the header has columns: a "
                "separator inside a value? Put such values in quotes",
            )]
            event = None
        else:
            event, errors = _row_event(row.cells, programme, opd_code, occurred_at)
            if event is not None:
                errors = check_event(event, programme, row.number, today, seen)
        if errors or event is None:
            plan.rejected.append(RowRejection(row.number, errors, row.originals))
        else:
            plan.accepted.append(UploadRow(row.number, event))
        if on_row is not None:
            on_row(done)
    return plan


def check_event(
    event: AnyRegistration, programme: Programme, number: int,
    today: date, seen: dict[str, list[tuple[int, set[str]]]],
) -> list[RejectionError]:
    """The checks of one row's event: the programme's rules, then (for a registration) no
    earlier row of the same submission for the same NIK and months (``seen``: NIK -> the
    rows and months seen so far, updated). Used for file rows and for the events of a JSON
    submission to the registration gateway alike."""
    if isinstance(event, WorkerDeregistered):
        return [_as_column(e) for e in check_deregistration(event, programme, today)]
    if isinstance(event, WorkerCorrected):
        return [_as_column(e) for e in check_correction(event, programme, today)]
    errors = [_as_column(e) for e in check_registration(event, programme, today)]
    return errors or _duplicates_in_file(event, programme, number, seen)


def _duplicates_in_file(
    event: WorkerRegistered, programme: Programme, number: int,
    seen: dict[str, list[tuple[int, set[str]]]],
) -> list[RejectionError]:
    months = set(covered_periods(programme, event.coverage_start, event.months))
    earlier = seen.setdefault(nik_of(event), [])
    clash = [other for other, taken in earlier if taken & months]
    if clash:
        return [rejection(
            "nik", E.DUPLICATE_IN_FILE,
            f"the same NIK is already on row {clash[0]} of this file for overlapping months",
        )]
    earlier.append((number, months))
    return []


def _as_column(error: RejectionError) -> RejectionError:
    """Domain fields (worker.nik) as the file's columns (nik)."""
    name = error.field.removeprefix("worker.")
    return error if name == error.field else error.model_copy(update={"field": name})


def _row_event(
    cells: dict[str, CellValue], programme: Programme, opd_code: str, occurred_at: datetime
) -> tuple[WorkerRegistered | None, list[RejectionError]]:
    values: dict[str, Any] = {}
    errors: list[RejectionError] = []
    for column, parse in _PARSERS.items():
        cell = cells.get(column)
        if isinstance(cell, Formula):
            errors.append(rejection(
                column, E.FORMULA_NOT_ALLOWED,
                f"{column} holds a formula; type the value itself (copy, then paste values)",
            ))
            continue
        text = _text(cell)
        if text == "" and column not in OPTIONAL:
            errors.append(rejection(column, E.MISSING_FIELD, f"{column} is empty"))
            continue
        try:
            values[column] = parse(cell, text, programme)
        except _CellError as exc:
            errors.append(rejection(column, exc.code, exc.message))
    if errors:
        return None, errors
    if _is_example(values):
        return None, [rejection(
            "", E.EXAMPLE_ROW,
            "this is the template's example row (a made-up worker): delete it before uploading",
        )]
    worker = {k: values[k] for k in COLUMNS[:8]}
    content = {"worker": worker, "coverage_start": values["coverage_start"],
               "months": values["months"], "opd_code": opd_code, "programme": programme.id}
    digest = hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()
    event_id = derived_id(
        "upload", programme.id, opd_code, worker["nik"], values["coverage_start"],
        str(values["months"]), digest,
    )
    try:
        event = WorkerRegistered.model_validate(
            {**content, "event_id": event_id, "event_type": "registered",
             "occurred_at": occurred_at}
        )
    except ValidationError as exc:
        return None, [_as_column(e) for e in rejections_from_validation_error(exc)]
    return event, []


def _is_example(values: dict[str, Any]) -> bool:
    return bool(
        values["nik"] == EXAMPLE_ROW["nik"]
        and values["full_name"].casefold() == EXAMPLE_ROW["full_name"].casefold()
    )


# --- one parser per column: (cell, its text, programme) -> value for the event ------------


def _text(cell: CellValue) -> str:
    if cell is None:
        return ""
    if isinstance(cell, str):
        text = cell.strip()
        return text[1:].strip() if text.startswith("'") else text  # Excel's "as text" mark
    if isinstance(cell, float) and cell.is_integer():
        return str(int(cell))
    if isinstance(cell, datetime):
        return cell.date().isoformat()
    return cell.isoformat() if isinstance(cell, date) else str(cell)


def _nik(cell: CellValue, text: str, _: Programme) -> str:
    if isinstance(cell, int | float) and not isinstance(cell, bool):
        raise _CellError(E.INVALID_NIK, (
            "nik is stored as a number, and a spreadsheet keeps only 15 digits of a number: "
            "format the nik column as Text and type the NIK again"))
    if "e+" in text.casefold():
        raise _CellError(E.INVALID_NIK, (
            "nik was turned into a number like 3.57E+15 by the spreadsheet: format the nik "
            "column as Text and type the NIK again"))
    return _NIK_SEPARATORS.sub("", text)  # 3573 0145 0790 0001 is still the same NIK


def _name(_: CellValue, text: str, __: Programme) -> str:
    return normalise_name(text)


def _birth_date(cell: CellValue, text: str, _: Programme) -> str:
    if isinstance(cell, datetime):
        return cell.date().isoformat()
    if isinstance(cell, date):
        return cell.isoformat()
    for pattern, order in ((_ISO_DATE, (0, 1, 2)), (_DAY_FIRST, (2, 1, 0))):
        match = pattern.match(text)
        if match:
            parts = [int(match.group(i + 1)) for i in order]
            try:
                return date(parts[0], parts[1], parts[2]).isoformat()
            except ValueError:
                break
    raise _CellError(E.INVALID_DATE, (
        "birth_date is not a real date; write it as YYYY-MM-DD (1990-07-05) or DD/MM/YYYY "
        "(05/07/1990)"))


def _sex(_: CellValue, text: str, __: Programme) -> str:
    sex = _SEXES.get(text.casefold())
    if sex is None:
        raise _CellError(E.INVALID_SEX, "sex must be M or F (L/P: laki-laki/perempuan)")
    return sex


def _category(_: CellValue, text: str, __: Programme) -> str:
    key = re.sub(r"[\s\-]+", "_", text.casefold())
    if key not in _CATEGORIES:
        raise _CellError(E.UNKNOWN_CATEGORY, f"category must be one of: {', '.join(_CATEGORIES)}")
    return _CATEGORIES[key]


def _place(_: CellValue, text: str, __: Programme) -> str:
    return " ".join(text.split())


def _phone(cell: CellValue, text: str, _: Programme) -> str | None:
    if text == "":
        return None
    if isinstance(cell, float) and not cell.is_integer():
        raise _CellError(E.INVALID_PHONE, "phone must be written as text, e.g. 0812-3456-7890")
    normalised = normalise_phone(text)
    if normalised is None:
        raise _CellError(E.INVALID_PHONE, (
            "phone is not an Indonesian phone number (e.g. 0812-3456-7890 or +62 812 3456 "
            "7890); leave it empty if unknown"))
    return normalised


def _coverage_start(cell: CellValue, text: str, _: Programme) -> str:
    if isinstance(cell, date):  # a date cell: its month
        return format_period(cell.year, cell.month)
    candidates = []
    for pattern, year_group in ((_ISO_MONTH, 1), (_MONTH_FIRST, 2)):
        match = pattern.match(text)
        if match:
            year, month = int(match.group(year_group)), int(match.group(3 - year_group))
            candidates.append((year, month))
    match = _ISO_DATE.match(text)
    if match:
        candidates.append((int(match.group(1)), int(match.group(2))))
    for year, month in candidates:
        if 1 <= month <= 12 and year >= 1:
            return format_period(year, month)
    raise _CellError(E.INVALID_PERIOD, "coverage_start must be a month written YYYY-MM (2025-12)")


def _months(cell: CellValue, text: str, programme: Programme) -> int:
    if text == "":
        return programme.months
    if isinstance(cell, bool):
        raise _CellError(E.INVALID_MONTHS, "months must be a whole number from 1 to 12")
    if isinstance(cell, int):
        return cell
    if isinstance(cell, float) and cell.is_integer():
        return int(cell)
    if text.isdigit():
        return int(text)
    raise _CellError(E.INVALID_MONTHS, "months must be a whole number from 1 to 12")


_PARSERS: dict[str, Callable[[CellValue, str, Programme], Any]] = {
    "nik": _nik,
    "full_name": _name,
    "birth_date": _birth_date,
    "sex": _sex,
    "category": _category,
    "kecamatan": _place,
    "kelurahan": _place,
    "phone": _phone,
    "coverage_start": _coverage_start,
    "months": _months,
}
