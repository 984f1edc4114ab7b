"""The rules of a programme that one registration must meet, each with a stable code.

Errors refuse the registration. Warnings are checks that can legitimately fail (Dukcapil
corrects a birth date without changing the NIK): the registration is accepted and the
warning travels with it.
"""

from __future__ import annotations

import re
from datetime import date

from schemas.events import (
    AnyRegistration,
    RejectionError,
    WorkerCorrected,
    WorkerDeregistered,
    WorkerRegistered,
)
from services.domain import errors as E
from services.domain.errors import rejection
from services.domain.nik import NikError, nik_matches_birth_date, parse_nik
from services.domain.periods import period_from_index, period_index, period_of
from services.domain.places import (
    canonical_kecamatan,
    canonical_kelurahan,
    canonical_opd,
    normalise_name,
    normalise_phone,
    places_of,
)
from services.domain.programme import Programme

__all__ = ["check_correction", "check_deregistration", "check_opd", "check_registration",
           "correction_warnings", "registration_warnings"]

_NAME_OK = re.compile(r"^[^\W\d_](?:[^\W\d_]|[ .,'`\u2019-])*$")


def _age_on(born: date, day: date) -> int:
    return day.year - born.year - ((day.month, day.day) < (born.month, born.day))


def _first_day(period: str) -> date:
    year, month0 = divmod(period_index(period), 12)
    return date(year, month0 + 1, 1)


def check_opd(event: AnyRegistration, programme: Programme) -> list[
    RejectionError
]:
    if canonical_opd(programme, event.opd_code) is not None:
        return []
    return [
        rejection("opd_code", E.UNKNOWN_OPD,
              f"OPD code {E.quote_code(event.opd_code)} may not register workers in programme "
              f"{programme.id}; allowed: {', '.join(sorted(programme.opds))}")
    ]


def _check_nik(worker_nik: str, sex: str, today: date, prefix: str) -> list[RejectionError]:
    try:
        nik = parse_nik(worker_nik, reference=today)
    except NikError as exc:
        return [rejection(f"{prefix}nik", exc.code, exc.message)]
    if nik.sex != sex:
        return [
            rejection(f"{prefix}sex", E.NIK_SEX_MISMATCH,
                      f"sex is {sex} but the NIK is a {'woman' if nik.sex == 'F' else 'man'}'s "
                      "(women have 40 added to the day of birth): check both")
        ]
    return []


def registration_warnings(event: WorkerRegistered, today: date) -> list[RejectionError]:
    """Checks that may legitimately fail on a valid registration (empty when none does)."""
    return _birth_date_warning(event.worker.nik, event.worker.birth_date, today,
                               "worker.birth_date")


def correction_warnings(event: WorkerCorrected, today: date) -> list[RejectionError]:
    """The same checks for a correction's birth date."""
    if event.corrected.birth_date is None:
        return []
    return _birth_date_warning(event.nik, event.corrected.birth_date, today,
                               "corrected.birth_date")


def _birth_date_warning(text: str, born: date, today: date, field: str) -> list[RejectionError]:
    try:
        nik = parse_nik(text, reference=today)
    except NikError:
        return []  # an error, reported by the checks of the event
    if nik_matches_birth_date(nik, born):
        return []
    return [
        rejection(field, E.NIK_BIRTH_DATE_MISMATCH,
                  "birth_date differs from the birth date in the NIK (digits 7-12, DDMMYY, day "
                  "+ 40 for women); accepted, since Dukcapil corrects birth dates without "
                  "changing the NIK: check the KTP")
    ]


def _check_place(
    worker_kecamatan: str, worker_kelurahan: str, programme: Programme
) -> list[RejectionError]:
    kecamatan = canonical_kecamatan(programme, worker_kecamatan)
    if kecamatan is None:
        return [
            rejection("worker.kecamatan", E.UNKNOWN_KECAMATAN,
                      f"kecamatan is not one of the kecamatan of {programme.city}: "
                      f"{', '.join(programme.kecamatan)}")
        ]
    places = places_of(programme)
    if canonical_kelurahan(programme, kecamatan, worker_kelurahan) is not None:
        return []
    elsewhere = places.kecamatan_of_kelurahan(worker_kelurahan)
    hint = (f"; that kelurahan is in kecamatan {', '.join(elsewhere)}" if elsewhere else
            f"; its kelurahan are {', '.join(programme.kecamatan[kecamatan])}")
    return [
        rejection("worker.kelurahan", E.UNKNOWN_KELURAHAN,
                  f"kelurahan is not in kecamatan {kecamatan}{hint}")
    ]


def _check_coverage(event: WorkerRegistered, programme: Programme, today: date) -> list[
    RejectionError
]:
    found = []
    if not 1 <= event.months <= programme.months:
        found.append(
            rejection("months", E.INVALID_MONTHS,
                  f"months must be from 1 to {programme.months} in programme {programme.id}")
        )
    start = period_index(event.coverage_start)
    if start < period_index(programme.first_period):
        found.append(
            rejection("coverage_start", E.COVERAGE_BEFORE_PROGRAMME,
                  f"coverage_start {event.coverage_start} is before programme {programme.id} "
                  f"starts ({programme.first_period})")
        )
    elif start > period_index(programme.last_period):
        found.append(
            rejection("coverage_start", E.COVERAGE_AFTER_PROGRAMME,
                  f"coverage_start {event.coverage_start} is after programme {programme.id} "
                  f"ends ({programme.last_period})")
        )
    born = event.worker.birth_date
    if born > today:
        found.append(rejection("worker.birth_date", E.INVALID_DATE, "birth_date is in the future"))
        return found
    age = _age_on(born, _first_day(event.coverage_start))
    limits = programme.eligibility
    if not limits.min_age <= age <= limits.max_age:
        found.append(
            rejection("worker.birth_date", E.AGE_OUT_OF_RANGE,
                  f"worker is {age} years old at coverage start {event.coverage_start}; "
                  f"programme {programme.id} covers ages {limits.min_age} to {limits.max_age}")
        )
    return found


def check_registration(
    event: WorkerRegistered, programme: Programme, today: date
) -> list[RejectionError]:
    """Every rule of the programme that the registration breaks (empty when it is valid)."""
    worker = event.worker
    errors = check_opd(event, programme)
    errors += _check_nik(worker.nik, worker.sex, today, "worker.")
    errors += _check_name(worker.full_name, "worker.")
    errors += _check_phone(worker.phone, "worker.")
    if worker.category not in programme.eligibility.categories:
        errors.append(
            rejection("worker.category", E.CATEGORY_NOT_ELIGIBLE,
                  f"category {worker.category.value} is not covered by programme {programme.id}; "
                  f"covered: {', '.join(c.value for c in programme.eligibility.categories)}")
        )
    errors += _check_place(worker.kecamatan, worker.kelurahan, programme)
    errors += _check_coverage(event, programme, today)
    errors += _check_open(programme, today)
    return errors


def _check_name(full_name: str, prefix: str) -> list[RejectionError]:
    name = normalise_name(full_name)
    if len(name) >= 2 and _NAME_OK.match(name):
        return []
    return [rejection(f"{prefix}full_name", E.INVALID_NAME,
                      "full_name must be the worker's name as on the KTP: at least 2 "
                      "characters, starting with a letter, then letters, spaces and . , ' - "
                      "only (no digits)")]


def _check_phone(phone: str | None, prefix: str) -> list[RejectionError]:
    if phone is None or not phone.strip() or normalise_phone(phone) is not None:
        return []
    return [rejection(f"{prefix}phone", E.INVALID_PHONE,
                      "phone is not an Indonesian phone number (e.g. 0812-3456-7890, +62 812 "
                      "3456 7890 or (0341) 551234); leave it empty if unknown")]


def check_correction(event: WorkerCorrected, programme: Programme, today: date) -> list[
    RejectionError
]:
    """The rules a correction's values meet (the same as a registration's); whether the OPD
    may correct the worker is the enrolment's to say."""
    errors = check_opd(event, programme)
    try:
        parse_nik(event.nik, reference=today)
    except NikError as exc:
        errors.append(rejection("nik", exc.code, exc.message))
    corrected = event.corrected
    if corrected.full_name is not None:
        errors += _check_name(corrected.full_name, "corrected.")
    if corrected.birth_date is not None and corrected.birth_date > today:
        errors.append(rejection("corrected.birth_date", E.INVALID_DATE,
                                "birth_date is in the future"))
    errors += _check_phone(corrected.phone, "corrected.")
    if corrected.kecamatan is not None and corrected.kelurahan is not None:
        errors += [error.model_copy(update={"field": error.field.replace("worker.",
                                                                         "corrected.")})
                   for error in _check_place(corrected.kecamatan, corrected.kelurahan,
                                             programme)]
    return errors


def _check_open(programme: Programme, today: date) -> list[RejectionError]:
    """A registration is taken up to the programme's closing day (``today`` is the event's
    day in the programme's time zone)."""
    closes = programme.registration_closes()
    if today <= closes:
        return []
    return [rejection(
        "occurred_at", E.PROGRAMME_CLOSED,
        f"programme {programme.id} (fiscal year {programme.fiscal_year}) took registrations "
        f"until {closes.isoformat()}; this one is dated {today.isoformat()}: register the "
        "worker in the programme of the current year")]




def check_deregistration(event: WorkerDeregistered, programme: Programme, today: date) -> list[
    RejectionError
]:
    """The rules a deregistration must meet before it is held against the enrolments
    (``today`` is the event's day in the programme's time zone)."""
    errors = check_opd(event, programme)
    try:
        parse_nik(event.nik, reference=today)
    except NikError as exc:
        errors.append(rejection("nik", exc.code, exc.message))
    if not errors:
        errors += _check_effective_period(event, programme, today)
    return errors


def _check_effective_period(event: WorkerDeregistered, programme: Programme,
                            today: date) -> list[RejectionError]:
    """Cover stops from the current month on at the earliest. Only a coordinating OPD goes
    further back, for a documented death: from the month after it (what that cancels of
    months billed or paid is a claim on BPJS, never free budget)."""
    current = period_of(today)
    if period_index(event.effective_period) >= period_index(current):
        return []
    if canonical_opd(programme, event.opd_code) not in programme.coordinators:
        coordinators = ", ".join(programme.coordinators) or "none"
        return [rejection(
            "effective_period", E.EFFECTIVE_PERIOD_IN_PAST,
            f"cover stops from the current month ({current}) on at the earliest; only a "
            f"coordinating OPD of programme {programme.id} ({coordinators}) stops earlier "
            "months, for a documented death (reason_code deceased, reason_date)")]
    if event.reason_code is None or event.reason_date is None or event.reason_date > today:
        return [rejection(
            "reason_code", E.BACKDATING_REASON_REQUIRED,
            f"stopping months before the current one ({current}) needs reason_code "
            "deceased and reason_date, the date of death (not after the event's day)")]
    first = period_from_index(period_index(period_of(event.reason_date)) + 1)
    if period_index(event.effective_period) < period_index(first):
        return [rejection(
            "effective_period", E.EFFECTIVE_PERIOD_IN_PAST,
            f"a death on {event.reason_date.isoformat()} ends cover after its month: "
            f"effective_period is {first} at the earliest")]
    return []
