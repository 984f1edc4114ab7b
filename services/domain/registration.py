"""Registration rules: turn one decoded event plus the worker's enrolment state into a
decision (a contribution schedule, rejections, or both) and the next state.

The state of one NIK is a plain JSON-able dict so that it can live in a keyed table::

    {"enrollments": [{"event_id", "programme", "opd_code", "category", "kecamatan",
                      "funding_source", "periods": [...], "cancelled": [...]}],
     "events": {event_id: "accepted" | "rejected"}}
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from schemas.events import (
    ContributionSchedule,
    RejectionError,
    WorkerDeregistered,
    WorkerRegistered,
)
from services.domain.nik import NikError, parse_nik
from services.domain.periods import period_index
from services.domain.programme import Programme
from services.domain.schedule import cancelled_schedule, covered_periods, due_schedule

NikState = dict[str, Any]

_NAME_OK = re.compile(r"^[^\W\d_](?:[^\W\d_]|[ .,'`-])*$")
_PHONE_DIGITS = re.compile(r"^\+?[0-9][0-9 ()-]{6,20}$")


@dataclass
class Decision:
    """What the validator emits for one event."""

    schedules: list[ContributionSchedule] = field(default_factory=list)
    errors: list[RejectionError] = field(default_factory=list)
    state: NikState | None = None  # the new state, or None when unchanged
    duplicate_event: bool = False


def error(field_name: str, code: str, message: str) -> RejectionError:
    return RejectionError(field=field_name, code=code, message=message)


def empty_state() -> NikState:
    return {"enrollments": [], "events": {}}


def normalise_phone(raw: str) -> str | None:
    """Indonesian numbers as +62...; None when the text is not a phone number."""
    text = raw.strip()
    if not _PHONE_DIGITS.match(text):
        return None
    digits = re.sub(r"[^0-9]", "", text)
    if text.startswith("+"):
        if not digits.startswith("62"):
            return None
        national = digits[2:]
    elif digits.startswith("62"):
        national = digits[2:]
    elif digits.startswith("0"):
        national = digits[1:]
    else:
        return None
    national = national.lstrip("0")
    if not national.startswith("8") and not national[:1].isdigit():
        return None
    if not 8 <= len(national) <= 13:
        return None
    return "+62" + national


def _age_on(born: date, day: date) -> int:
    return day.year - born.year - ((day.month, day.day) < (born.month, born.day))


def check_registration(
    event: WorkerRegistered, programme: Programme, today: date
) -> list[RejectionError]:
    """Every rule of the programme that the registration breaks (empty when it is valid)."""
    errors: list[RejectionError] = []
    worker = event.worker
    if event.opd_code not in programme.opds:
        errors.append(
            error("opd_code", "unknown_opd",
                  f"OPD code {event.opd_code!r} may not register workers in programme "
                  f"{programme.id}")
        )
    try:
        nik = parse_nik(worker.nik, reference=today)
    except NikError as exc:
        errors.append(error("worker.nik", exc.code, exc.message))
    else:
        if nik.birth_date != worker.birth_date:
            errors.append(
                error("worker.birth_date", "nik_birth_date_mismatch",
                      "birth_date does not match the birth date encoded in the NIK")
            )
        if nik.sex != worker.sex:
            errors.append(
                error("worker.sex", "nik_sex_mismatch",
                      "sex does not match the NIK (women have 40 added to the day of birth)")
            )
    name = unicodedata.normalize("NFC", worker.full_name).strip()
    if not name or not _NAME_OK.match(name) or len(name) < 2:
        errors.append(
            error("worker.full_name", "invalid_name",
                  "full_name must be a person's name: letters, spaces and . , ' - only")
        )
    if worker.phone is not None and worker.phone.strip() and normalise_phone(worker.phone) is None:
        errors.append(
            error("worker.phone", "invalid_phone",
                  "phone is not an Indonesian phone number (e.g. 0812-3456-7890 or +62812...)")
        )
    if worker.category not in programme.eligibility.categories:
        errors.append(
            error("worker.category", "category_not_eligible",
                  f"category {worker.category.value} is not covered by {programme.id}")
        )
    kecamatan = programme.canonical_kecamatan(worker.kecamatan)
    if kecamatan is None:
        errors.append(
            error("worker.kecamatan", "unknown_kecamatan",
                  f"kecamatan {worker.kecamatan!r} is not in {programme.city}")
        )
    elif programme.canonical_kelurahan(kecamatan, worker.kelurahan) is None:
        errors.append(
            error("worker.kelurahan", "unknown_kelurahan",
                  f"kelurahan {worker.kelurahan!r} is not in kecamatan {kecamatan}")
        )
    start = period_index(event.coverage_start)
    if start < period_index(programme.first_period):
        errors.append(
            error("coverage_start", "coverage_before_programme",
                  f"coverage_start {event.coverage_start} is before the programme starts "
                  f"({programme.first_period})")
        )
    elif start > period_index(programme.last_period):
        errors.append(
            error("coverage_start", "coverage_after_programme",
                  f"coverage_start {event.coverage_start} is after the programme ends "
                  f"({programme.last_period})")
        )
    year, month = divmod(start, 12)
    start_day = date(year, month + 1, 1)
    age = _age_on(worker.birth_date, start_day)
    limits = programme.eligibility
    if not limits.min_age <= age <= limits.max_age:
        errors.append(
            error("worker.birth_date", "age_out_of_range",
                  f"worker is {age} at coverage start; the programme covers ages "
                  f"{limits.min_age} to {limits.max_age}")
        )
    return errors


def _held_periods(enrollment: dict[str, Any]) -> set[str]:
    return set(enrollment["periods"]) - set(enrollment.get("cancelled", []))


def decide_registration(
    state: NikState, event: WorkerRegistered, programme: Programme, today: date
) -> Decision:
    event_key = str(event.event_id)
    if event_key in state["events"]:
        return _replay(state, event_key, programme, event)
    errors = check_registration(event, programme, today)
    periods = covered_periods(programme, event.coverage_start, event.months) if not errors else []
    if not errors:
        clashes: dict[str, dict[str, Any]] = {}
        for enrollment in state["enrollments"]:
            for period in _held_periods(enrollment):
                clashes.setdefault(period, enrollment)
        taken = [p for p in periods if p in clashes]
        if taken:
            holder = clashes[taken[0]]
            errors.append(
                error("worker.nik", "duplicate_enrollment",
                      f"worker is already covered for {', '.join(taken)} by OPD "
                      f"{holder['opd_code']} in programme {holder['programme']}")
            )
            periods = [p for p in periods if p not in clashes]
    new_state = {"enrollments": list(state["enrollments"]), "events": dict(state["events"])}
    if not periods:
        new_state["events"][event_key] = "rejected"
        return Decision(errors=errors, state=new_state)
    worker = event.worker
    canonical = programme.canonical_kecamatan(worker.kecamatan) or worker.kecamatan
    event = event.model_copy(
        update={"worker": worker.model_copy(update={"kecamatan": canonical})}
    )
    schedule = due_schedule(programme, event, periods)
    new_state["enrollments"].append(
        {
            "event_id": event_key,
            "programme": programme.id,
            "opd_code": event.opd_code,
            "category": worker.category.value,
            "kecamatan": canonical,
            "funding_source": programme.funding_source,
            "periods": periods,
            "cancelled": [],
        }
    )
    new_state["events"][event_key] = "accepted"
    return Decision(schedules=[schedule], errors=errors, state=new_state)


def decide_deregistration(
    state: NikState, event: WorkerDeregistered, programme: Programme, today: date
) -> Decision:
    event_key = str(event.event_id)
    if event_key in state["events"]:
        return _replay(state, event_key, programme, event)
    errors: list[RejectionError] = []
    if event.opd_code not in programme.opds:
        errors.append(
            error("opd_code", "unknown_opd",
                  f"OPD code {event.opd_code!r} may not act in programme {programme.id}")
        )
    try:
        parse_nik(event.nik, reference=today)
    except NikError as exc:
        errors.append(error("nik", exc.code, exc.message))
    new_state = {"enrollments": [dict(e) for e in state["enrollments"]],
                 "events": dict(state["events"])}
    schedules: list[ContributionSchedule] = []
    if not errors:
        first_stopped = period_index(event.effective_period)
        for enrollment in new_state["enrollments"]:
            if enrollment["programme"] != programme.id:
                continue
            stop = sorted(p for p in _held_periods(enrollment) if period_index(p) >= first_stopped)
            if stop:
                enrollment["cancelled"] = sorted(set(enrollment.get("cancelled", [])) | set(stop))
                schedules.append(
                    cancelled_schedule(programme, event, _as_held(enrollment, event), stop)
                )
        if not schedules:
            errors.append(
                error("nik", "not_enrolled",
                      f"worker has no covered month from {event.effective_period} on in "
                      f"programme {programme.id}")
            )
    new_state["events"][event_key] = "accepted" if schedules else "rejected"
    return Decision(schedules=schedules, errors=errors, state=new_state)


def _as_held(enrollment: dict[str, Any], event: WorkerDeregistered) -> ContributionSchedule:
    return ContributionSchedule.model_construct(
        opd_code=enrollment["opd_code"],
        category=enrollment["category"],
        kecamatan=enrollment["kecamatan"],
        funding_source=enrollment["funding_source"],
    )


def _replay(
    state: NikState,
    event_key: str,
    programme: Programme,
    event: WorkerRegistered | WorkerDeregistered,
) -> Decision:
    """An event seen before: no new effect. An accepted one re-emits the identical schedule
    (same ids, so every sink ignores it) in case the first emission was lost in a crash."""
    if state["events"][event_key] != "accepted":
        return Decision(duplicate_event=True)
    schedules: list[ContributionSchedule] = []
    if isinstance(event, WorkerRegistered):
        for enrollment in state["enrollments"]:
            if enrollment["event_id"] == event_key:
                worker = event.worker.model_copy(update={"kecamatan": enrollment["kecamatan"]})
                schedules.append(
                    due_schedule(programme, event.model_copy(update={"worker": worker}),
                                 enrollment["periods"])
                )
    return Decision(schedules=schedules, duplicate_event=True)
