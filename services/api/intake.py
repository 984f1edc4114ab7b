"""The body of POST /v1/registrations -> numbered rows, each an event or its errors.

A JSON array of v1 events (row = position in the array, from 1) or a CSV/XLSX upload in the
published template (row = the spreadsheet's row number), checked with the same functions
``iuran publish`` uses (services.domain.rows). Pure: no database, no broker.

Event ids: a JSON event keeps the id its publisher chose. An uploaded row gets an id derived
from the Idempotency-Key and its row number when the request has a key (the same request
retried yields the same events), otherwise the id ``iuran publish`` derives from its content.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from pydantic import TypeAdapter, ValidationError

from schemas.events import (
    AnyRegistration,
    RegistrationEvent,
    RejectionError,
    WorkerRegistered,
)
from services.adapters.tables import read_table_bytes
from services.api.auth import Principal
from services.domain import errors as E
from services.domain.errors import rejections_from_validation_error
from services.domain.nik import nik_of
from services.domain.places import canonical_opd
from services.domain.programme import Programme
from services.domain.rows import check_columns, check_event, plan_upload
from services.domain.schedule import derived_id
from services.domain.sheet import Table, TableError, cell_text

Source = Literal["json", "csv", "xlsx"]
Event = AnyRegistration
_events: TypeAdapter[Event] = TypeAdapter(RegistrationEvent)


class IntakeError(Exception):
    """The request as a whole is refused: ``status`` (403, 413, 415, 422), a stable
    ``code`` and a message; ``rows`` names the rows at fault (403: claims of another OPD)."""

    def __init__(self, status: int, code: str, message: str,
                 rows: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.rows = rows or []

    def detail(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.rows:
            body["rows"] = self.rows
        return body


@dataclass(frozen=True, slots=True)
class Row:
    number: int
    nik: str | None
    programme: str | None
    event: Event | None
    errors: list[RejectionError] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Limits:
    max_rows: int
    occurred_at: datetime  # the moment of the request; each programme judges its own day
    idempotency_key: str | None
    max_unpacked_bytes: int = 100 * 1024 * 1024


def choose_programme(principal: Principal, programmes: Mapping[str, Programme],
                     wanted: str | None) -> Programme:
    """The programme an upload registers in: the one named, or the token's only one."""
    if wanted is None:
        if len(principal.programmes) != 1:
            raise IntakeError(422, "programme_required",
                              "name the programme (?programme=...): this token registers in "
                              + ", ".join(sorted(principal.programmes)))
        (wanted,) = principal.programmes
    if wanted not in principal.programmes or wanted not in programmes:
        raise IntakeError(403, "programme_not_allowed",
                          f"OPD {principal.opd_code} may not register in programme {wanted!r}")
    return programmes[wanted]


def read_upload(data: bytes, source: Source, principal: Principal, programme: Programme,
                limits: Limits) -> list[Row]:
    """The rows of a CSV/XLSX upload in the template, for the token's OPD."""
    opd = principal.opd_code
    assert opd is not None
    if source == "xlsx":
        _check_unpacked_size(data, limits.max_unpacked_bytes)
    try:
        table = read_table_bytes(data, source)
        check_columns(table)
    except TableError as exc:
        raise IntakeError(422, "unreadable_file", str(exc)) from None
    _check_count(len(table.rows), limits.max_rows)
    plan = plan_upload(table, programme, opd, today=programme.today(limits.occurred_at),
                       occurred_at=limits.occurred_at)
    rows = [Row(item.number, item.event.worker.nik, programme.id,
                _with_key_id(item.event, opd, limits.idempotency_key, item.number))
            for item in plan.accepted]
    written = _written_niks(table)
    rows += [Row(item.number, written.get(item.number), programme.id, None, item.errors)
             for item in plan.rejected]
    return sorted(rows, key=lambda r: r.number)


def read_events(data: bytes, principal: Principal, programmes: Mapping[str, Programme],
                limits: Limits) -> list[Row]:
    """The rows of a JSON array of v1 registration/deregistration events. A row that claims
    another OPD, or a programme the token does not register in, refuses the whole request
    (IntakeError 403 naming the rows)."""
    try:
        items = json.loads(data)
    except (UnicodeDecodeError, ValueError) as exc:
        raise IntakeError(422, E.MALFORMED_JSON, f"the body is not JSON: {exc}") from None
    except RecursionError:
        raise IntakeError(422, E.MALFORMED_JSON, "the body nests too deeply to be events"
                          ) from None
    if not isinstance(items, list):
        raise IntakeError(422, "not_an_array", "the body must be a JSON array of events")
    _check_count(len(items), limits.max_rows)
    rows: list[Row] = []
    foreign: list[dict[str, Any]] = []
    seen: dict[str, list[tuple[int, set[str]]]] = {}
    for number, item in enumerate(items, start=1):
        try:
            event = _events.validate_python(item)
        except ValidationError as exc:
            rows.append(Row(number, _claimed_nik(item), _text(item, "programme"), None,
                            rejections_from_validation_error(exc)))
            continue
        programme = programmes.get(event.programme)
        claimed = canonical_opd(programme, event.opd_code) if programme else None
        if event.programme not in principal.programmes or claimed != principal.opd_code:
            foreign.append({"row": number, "opd_code": event.opd_code,
                            "programme": event.programme})
            continue
        assert programme is not None
        errors = check_event(event, programme, number, programme.today(limits.occurred_at),
                             seen)
        rows.append(Row(number, nik_of(event), programme.id, None if errors else event, errors))
    if foreign:
        listed = ", ".join(str(f["row"]) for f in foreign[:20])
        raise IntakeError(403, "other_opd",
                          f"row(s) {listed} claim another OPD or a programme this token does "
                          f"not register in (OPD {principal.opd_code}, programmes "
                          f"{', '.join(sorted(principal.programmes))}): nothing was sent",
                          rows=foreign)
    return rows


def _check_unpacked_size(data: bytes, largest: int) -> None:
    """An XLSX is a zip: refuse one that unpacks to more than ``largest`` bytes before
    reading it (a small file can hold gigabytes of repeated cells)."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            unpacked = sum(info.file_size for info in archive.infolist())
    except (zipfile.BadZipFile, ValueError):
        raise IntakeError(422, "unreadable_file", "upload: not a readable XLSX file "
                                                  "(save it as .xlsx or CSV)") from None
    if unpacked > largest:
        raise IntakeError(413, "workbook_too_large",
                          f"the workbook unpacks to {unpacked} bytes, more than {largest}: "
                          "split it or send it as CSV")


def _check_count(count: int, largest: int) -> None:
    if count == 0:
        raise IntakeError(422, "no_rows", "the submission holds no rows")
    if count > largest:
        raise IntakeError(422, "too_many_rows",
                          f"the submission holds {count} rows; at most {largest} per request "
                          "(IURAN_API_MAX_UPLOAD_ROWS): split it")


def _with_key_id(event: WorkerRegistered, opd: str, key: str | None,
                 number: int) -> WorkerRegistered:
    if key is None:
        return event
    return event.model_copy(update={"event_id": derived_id("gateway", opd, key, str(number))})


def _written_niks(table: Table) -> dict[int, str]:
    return {row.number: cell_text(row.cells.get("nik")).strip()[:32] for row in table.rows}


def _text(item: object, name: str) -> str | None:
    value = item.get(name) if isinstance(item, dict) else None
    return value[:64] if isinstance(value, str) else None


def _claimed_nik(item: object) -> str | None:
    if not isinstance(item, dict):
        return None
    worker = item.get("worker")
    return _text(worker, "nik") if isinstance(worker, dict) else _text(item, "nik")

