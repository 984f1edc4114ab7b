"""The catalogue of rejection codes: stable strings with their meaning for an OPD clerk.

Every rejection the system emits (the rejected topic, ``iuran publish``) carries one of
these codes. Codes are part of the public contract: add new ones, never rename or reuse.
Messages say which field failed and what to do; they never repeat a value that could be
personal data (NIK, name, phone number, free text).
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from schemas.events import Category, RejectedEvent, RejectionError

# The message as a whole
MALFORMED_JSON = "malformed_json"
MESSAGE_TOO_LARGE = "message_too_large"
MISSING_FIELD = "missing_field"
INVALID_FIELD = "invalid_field"
UNKNOWN_EVENT_TYPE = "unknown_event_type"
UNSUPPORTED_SCHEMA_VERSION = "unsupported_schema_version"
INVALID_EVENT_ID = "invalid_event_id"
INVALID_TIMESTAMP = "invalid_timestamp"
INVALID_PERIOD = "invalid_period"
INVALID_MONTHS = "invalid_months"
UNKNOWN_CATEGORY = "unknown_category"
INVALID_SEX = "invalid_sex"
INVALID_DATE = "invalid_date"
# Who registers, in which programme
UNKNOWN_PROGRAMME = "unknown_programme"
UNKNOWN_OPD = "unknown_opd"
# The worker
INVALID_NIK = "invalid_nik"
UNKNOWN_REGENCY_CODE = "unknown_regency_code"
UNKNOWN_KECAMATAN_CODE = "unknown_kecamatan_code"
NIK_BIRTH_DATE_MISMATCH = "nik_birth_date_mismatch"
NIK_SEX_MISMATCH = "nik_sex_mismatch"
INVALID_NAME = "invalid_name"
INVALID_PHONE = "invalid_phone"
CATEGORY_NOT_ELIGIBLE = "category_not_eligible"
UNKNOWN_KECAMATAN = "unknown_kecamatan"
UNKNOWN_KELURAHAN = "unknown_kelurahan"
AGE_OUT_OF_RANGE = "age_out_of_range"
COVERAGE_BEFORE_PROGRAMME = "coverage_before_programme"
COVERAGE_AFTER_PROGRAMME = "coverage_after_programme"
PROGRAMME_CLOSED = "programme_closed"
# The worker's enrolment state
DUPLICATE_ENROLLMENT = "duplicate_enrollment"
NOT_ENROLLED = "not_enrolled"
DEREGISTRATION_NOT_PERMITTED = "deregistration_not_permitted"
CORRECTION_NOT_PERMITTED = "correction_not_permitted"
EFFECTIVE_PERIOD_IN_PAST = "effective_period_in_past"
BACKDATING_REASON_REQUIRED = "backdating_reason_required"
EVENT_ALREADY_DECIDED = "event_already_decided"
COVER_GAP = "cover_gap"
# Set by the services at the stream edge
KEY_MISMATCH = "key_mismatch"
INTERNAL_ERROR = "internal_error"
MALFORMED_SCHEDULE = "malformed_schedule"
# Upload files (``iuran publish`` only; never on the rejected topic)
FORMULA_NOT_ALLOWED = "formula_not_allowed"
WRONG_COLUMN_COUNT = "wrong_column_count"
DUPLICATE_IN_FILE = "duplicate_in_file"
EXAMPLE_ROW = "example_row"

CATALOGUE: dict[str, str] = {
    MALFORMED_JSON: "The message is not a JSON object in UTF-8 text.",
    MESSAGE_TOO_LARGE: "The message is larger than a registration can be.",
    MISSING_FIELD: "A required field is missing.",
    INVALID_FIELD: "A field has the wrong type, is empty or is too long.",
    UNKNOWN_EVENT_TYPE: "event_type is not 'registered', 'deregistered' or 'corrected'.",
    UNSUPPORTED_SCHEMA_VERSION: "schema_version is not a version this system reads (1).",
    INVALID_EVENT_ID: "event_id is not a UUID.",
    INVALID_TIMESTAMP: "occurred_at is not a date-time with a time-zone offset.",
    INVALID_PERIOD: "A month (coverage_start, effective_period) is not written YYYY-MM.",
    INVALID_MONTHS: "months is not a whole number from 1 to the programme's months (12).",
    UNKNOWN_CATEGORY: "category is not one of the worker categories of the contract.",
    INVALID_SEX: "sex is not M or F.",
    INVALID_DATE: "birth_date is not a real date (YYYY-MM-DD) or lies in the future.",
    UNKNOWN_PROGRAMME: "programme names no programme configured in this system.",
    UNKNOWN_OPD: "opd_code is not an OPD allowed to register in the programme.",
    INVALID_NIK: "The NIK cannot be real: length, digits, province, birth date or serial.",
    UNKNOWN_REGENCY_CODE: "NIK digits 3-4 are no regency/city of the Kemendagri code list "
                          "(any edition since 2016).",
    UNKNOWN_KECAMATAN_CODE: "NIK digits 5-6 are no kecamatan of that regency/city in the "
                            "Kemendagri code list (any edition since 2016).",
    NIK_BIRTH_DATE_MISMATCH: "birth_date differs from the birth date encoded in the NIK.",
    NIK_SEX_MISMATCH: "sex differs from the NIK (women have 40 added to the day of birth).",
    INVALID_NAME: "full_name is not a person's name (letters, spaces and . , ' - only).",
    INVALID_PHONE: "phone is not an Indonesian phone number.",
    CATEGORY_NOT_ELIGIBLE: "The programme does not cover this category of worker.",
    UNKNOWN_KECAMATAN: "kecamatan is not a kecamatan of the programme's city.",
    UNKNOWN_KELURAHAN: "kelurahan is not a kelurahan of the given kecamatan.",
    AGE_OUT_OF_RANGE: "The worker's age at coverage start is outside the programme's limits.",
    COVERAGE_BEFORE_PROGRAMME: "coverage_start is before the programme's first month.",
    COVERAGE_AFTER_PROGRAMME: "coverage_start is after the programme's last month.",
    PROGRAMME_CLOSED: "The event is dated after the programme's registration window or fiscal "
                      "year: register the worker in the programme of the current year.",
    DUPLICATE_ENROLLMENT: "Another OPD or programme already pays for this worker in these months.",
    COVER_GAP: "A warning: the registration starts three or more months after the worker's last "
               "covered month, so the membership was inactive at BPJS and the 3-month minimum "
               "membership restarts.",
    NOT_ENROLLED: "Deregistration of a worker with no paid month from effective_period on, "
                  "or correction of a worker the programme never enrolled.",
    DEREGISTRATION_NOT_PERMITTED: "Deregistration by an OPD that neither enrolled the worker "
                                  "nor coordinates the programme.",
    CORRECTION_NOT_PERMITTED: "Correction of a worker by an OPD that did not enrol the worker "
                              "in the programme.",
    EFFECTIVE_PERIOD_IN_PAST: "effective_period is before the current month (before the month "
                              "after a documented death): cover already given is not taken "
                              "back.",
    BACKDATING_REASON_REQUIRED: "A coordinating OPD stops months before the current one only "
                                "with reason_code (deceased) and reason_date.",
    EVENT_ALREADY_DECIDED: "Another message reuses the event_id of an event decided before, "
                           "which was rejected or whose months were stopped since: send a "
                           "new event.",
    KEY_MISMATCH: "The message key is not the worker's NIK (it decides the partition).",
    INTERNAL_ERROR: "The system failed on this message; operations must look at it.",
    MALFORMED_SCHEDULE: "A contribution schedule that the ledger could not read.",
    FORMULA_NOT_ALLOWED: "A spreadsheet cell holds a formula; type the value itself.",
    WRONG_COLUMN_COUNT: "A CSV row has more values than the header has columns.",
    DUPLICATE_IN_FILE: "The same worker appears twice in the file for overlapping months.",
    EXAMPLE_ROW: "The template's made-up example row was left in the file.",
}

_DIGITS = re.compile(r"[0-9]")
_SAFE_CODE = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def rejection(field: str, code: str, message: str) -> RejectionError:
    """A RejectionError. Never raises (it runs at the stream edge); the unit tests check
    that every code the code base emits is in :data:`CATALOGUE`."""
    return RejectionError(field=field, code=code, message=message)


# The namespace of rejection ids (UUIDv5), apart from the contribution ids' namespace.
REJECTION_NAMESPACE = uuid.UUID("0f8a6c2e-3b7d-5e91-a4c6-7d2b9e1f3a58")
MAX_ORIGINAL_BYTES = 128 * 1024  # of the original value kept in a rejection record


def message_fingerprint(value: bytes | None) -> str:
    """A fingerprint of a message value: tells a redelivery of one message (the same bytes)
    from another message that reuses its event id."""
    return hashlib.sha256(value or b"").hexdigest()[:32]


def rejected_event(
    value: bytes | None, source_topic: str, partition: int, offset: int,
    errors: list[RejectionError], *, event_id: str | None = None, opd_code: str | None = None,
    programme: str | None = None, rejected_at: datetime | None = None,
) -> RejectedEvent:
    """The one way to build a record of the rejected topic.

    Its ``rejection_id`` is a UUIDv5 of the event id (or, for a message that is not an
    event, of its source position) and of the message's fingerprint: the same message
    rejected again, after a crash or a redelivery, gets the same id."""
    subject = event_id or f"{source_topic}:{partition}:{offset}"
    rejection_id = uuid.uuid5(REJECTION_NAMESPACE,
                              f"{subject}:{message_fingerprint(value)}")
    return RejectedEvent(
        original=(value or b"")[:MAX_ORIGINAL_BYTES].decode("utf-8", errors="replace"),
        source_topic=source_topic, partition=partition, offset=offset,
        rejected_at=rejected_at or datetime.now(UTC), errors=errors,
        event_id=event_id, opd_code=opd_code, programme=programme, rejection_id=rejection_id,
    )


def quote_code(value: str) -> str:
    """An identifier (OPD code, programme id) quoted for a message, or a neutral phrase when
    it does not look like one (it could then be anything, personal data included)."""
    if not _SAFE_CODE.match(value) or len(_DIGITS.findall(value)) >= 7:
        return "(not shown: not a code)"  # a NIK or a phone number is not echoed
    return repr(value)


def unknown_programme(programme_id: str, known: Iterable[str]) -> RejectionError:
    names = ", ".join(sorted(known)) or "none"
    return rejection(
        "programme",
        UNKNOWN_PROGRAMME,
        f"programme {quote_code(programme_id)} is not configured here; known programmes: "
        f"{names}",
    )


def message_too_large(size: int, limit: int) -> RejectionError:
    return rejection(
        "",
        MESSAGE_TOO_LARGE,
        f"message is {size:,} bytes; a registration event may be at most {limit:,} bytes",
    )


def malformed(reason: str) -> RejectionError:
    return rejection("", MALFORMED_JSON, reason)


# --- pydantic ValidationError -> rejections --------------------------------------------

_FIELD_CODES: dict[str, str] = {
    "schema_version": UNSUPPORTED_SCHEMA_VERSION,
    "event_id": INVALID_EVENT_ID,
    "occurred_at": INVALID_TIMESTAMP,
    "coverage_start": INVALID_PERIOD,
    "effective_period": INVALID_PERIOD,
    "months": INVALID_MONTHS,
    "opd_code": UNKNOWN_OPD,
    "programme": UNKNOWN_PROGRAMME,
    "nik": INVALID_NIK,
    "worker.nik": INVALID_NIK,
    "worker.full_name": INVALID_NAME,
    "worker.birth_date": INVALID_DATE,
    "worker.sex": INVALID_SEX,
    "worker.category": UNKNOWN_CATEGORY,
    "worker.kecamatan": UNKNOWN_KECAMATAN,
    "worker.kelurahan": UNKNOWN_KELURAHAN,
    "worker.phone": INVALID_PHONE,
}
_EVENT_TAGS = ("registered", "deregistered")
_CATEGORIES = ", ".join(c.value for c in Category)
_STRING_TYPES = {"string_type", "str_type"}
_INT_TYPES = {"int_type", "int_parsing", "int_from_float", "int_parsing_size"}


def _field_of(loc: Sequence[int | str]) -> str:
    parts = list(loc)
    if parts and parts[0] in _EVENT_TAGS:  # the discriminated union puts the tag first
        parts = parts[1:]
    return ".".join(str(p) for p in parts)


def _shape_problem(field: str, item: Any) -> str:
    """What is wrong with a value, from the error type and the model's constraints only."""
    kind = item["type"]
    ctx = item.get("ctx") or {}
    if kind == "string_too_short":
        return f"{field} must not be empty"
    if kind == "string_too_long":
        return f"{field} must be at most {ctx.get('max_length')} characters"
    if kind in _STRING_TYPES:
        return f"{field} must be text (a JSON string)"
    if kind in _INT_TYPES:
        return f"{field} must be a whole number"
    if kind in {"model_type", "model_attributes_type", "dict_type"}:
        return f"{field} must be a JSON object"
    return f"{field} has a value of the wrong kind"


def _message(code: str, field: str, item: Any) -> str:
    kind = item["type"]
    if code == MISSING_FIELD:
        return f"{field} is required but missing"
    if code == UNSUPPORTED_SCHEMA_VERSION:
        return "schema_version must be 1 (or left out); this system reads version 1 only"
    if code == INVALID_EVENT_ID:
        return ("event_id must be a UUID such as 6b1c3f0e-5a43-4f7b-9a43-2f1d7e5c9b10, "
                "chosen by the publisher and reused only when resending the same event")
    if code == INVALID_TIMESTAMP:
        return ("occurred_at must be a date and time with a time zone, "
                "e.g. 2025-11-25T09:30:00+07:00")
    if code == INVALID_PERIOD:
        return f"{field} must be a month written YYYY-MM, e.g. 2025-12"
    if code == INVALID_MONTHS:
        return "months must be a whole number from 1 to 12 (leave it out for 12)"
    if code == UNKNOWN_CATEGORY:
        return f"category must be one of: {_CATEGORIES}"
    if code == INVALID_SEX:
        return "sex must be M (male, laki-laki) or F (female, perempuan)"
    if code == INVALID_DATE:
        return f"{field} must be a real date written YYYY-MM-DD, e.g. 1990-07-05"
    if code == INVALID_NIK:
        if kind in _STRING_TYPES:
            return ("NIK must be text of 16 digits (a JSON string in quotes; in a "
                    "spreadsheet, format the column as Text)")
        return "NIK must be text of exactly 16 digits"
    return _shape_problem(field, item)


def rejections_from_validation_error(exc: ValidationError) -> list[RejectionError]:
    """The rejections for a registration that pydantic could not decode.

    Every pydantic error gets a stable code; messages are written here from the field and
    the model's constraints, never from the input (pydantic's own text may quote it).
    """
    found: list[RejectionError] = []
    seen: set[tuple[str, str]] = set()
    for item in exc.errors(include_url=False):
        kind = item["type"]
        field = _field_of(item["loc"])
        if kind == "json_invalid":
            code, field, message = MALFORMED_JSON, "", (
                "message is not valid JSON (it must be one JSON object in UTF-8 text)"
            )
        elif field == "" and kind in {"dict_type", "model_type", "model_attributes_type"}:
            code, message = MALFORMED_JSON, "message must be a JSON object {...}"
        elif field == "" and kind not in {"union_tag_not_found", "union_tag_invalid"}:
            code, message = MALFORMED_JSON, "message is not one JSON object in UTF-8 text"
        elif kind == "union_tag_not_found":
            field = "event_type"
            given = item.get("input")
            if isinstance(given, dict) and given.get("event_type") is not None:
                code, message = UNKNOWN_EVENT_TYPE, _unknown_event_type()
            else:
                code, message = MISSING_FIELD, (
                    "event_type is required: 'registered', 'deregistered' or 'corrected'"
                )
        elif kind == "union_tag_invalid":
            field, code, message = "event_type", UNKNOWN_EVENT_TYPE, _unknown_event_type()
        else:
            code = MISSING_FIELD if kind == "missing" else _FIELD_CODES.get(field, INVALID_FIELD)
            message = _message(code, field, item)
        if code == UNSUPPORTED_SCHEMA_VERSION:  # a v2 event: the other errors are noise
            return [rejection(field, code, message)]
        if (field, code) not in seen:
            seen.add((field, code))
            found.append(rejection(field, code, message))
    return found


def _unknown_event_type() -> str:
    return "event_type must be 'registered', 'deregistered' or 'corrected'"
