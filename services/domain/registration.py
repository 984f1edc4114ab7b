"""Registration rules: turn one decoded event plus the worker's enrolment state into a
decision (a contribution schedule, rejections, or both) and the next state.

The state of one NIK is a plain JSON-able dict so that it can live in a keyed table::

    {"enrollments": [{"event_id", "programme", "opd_code", "category", "kecamatan",
                      "funding_source", "periods": [...], "cancelled": [...],
                      "cancellations": {deregistration_event_id: [...]}}],
     "events": {event_id: "accepted" | "rejected"}}

``cancellations`` was added later: states without it are read as having none.

A month can be paid, cancelled by a deregistration and paid again by a later registration.
Each time it is paid again it is a new *generation* of that worker-month, with contribution
ids of its own (so that the ledger books it instead of taking it for a replay). The
generation is not stored: for an enrolment it is how many earlier enrolments of the NIK (in
any programme) have the month in their ``cancelled`` list. That count never changes once
the enrolment is accepted (a month is only accepted when no enrolment holds it, and a month
an enrolment does not hold never enters its ``cancelled`` list), so a replay emits the same
ids, and states written before generations existed need no new key.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from pydantic import ValidationError

from schemas.events import (
    ContributionSchedule,
    RejectionError,
    WorkerDeregistered,
    WorkerRegistered,
    parse_registration,
)
from services.domain import errors as E
from services.domain.errors import rejection, rejections_from_validation_error
from services.domain.nik import NikError, nik_matches_birth_date, parse_nik
from services.domain.periods import period_from_index, period_index
from services.domain.programme import Programme
from services.domain.schedule import (
    cancelled_schedule,
    covered_periods,
    derived_id,
    due_schedule,
)

__all__ = [
    "Decision",
    "NikState",
    "canonical_kecamatan",
    "canonical_kelurahan",
    "canonical_opd",
    "check_registration",
    "decide",
    "decide_deregistration",
    "decide_registration",
    "decode_registration",
    "empty_state",
    "generations",
    "normalise_name",
    "normalise_phone",
    "rejections_from_validation_error",
]

NikState = dict[str, Any]
MAX_MESSAGE_BYTES = 64 * 1024  # a registration is < 1 KiB; anything this big is not one

_NAME_OK = re.compile(r"^[^\W\d_](?:[^\W\d_]|[ .,'`\u2019-])*$")
_PHONE_TEXT = re.compile(r"^\+?[0-9 ().\-/]{7,24}$")
_PLACE_PREFIX = re.compile(r"^(kecamatan|kelurahan|kec|kel|desa)(\.\s*|\s+)", re.IGNORECASE)
_NOT_ALNUM = re.compile(r"[\W_]+")


@dataclass
class Decision:
    """What the validator emits for one event.

    ``schedules`` and ``errors`` can both be non-empty: a registration whose months partly
    overlap another payer's is accepted for the other months and rejected for those.
    """

    schedules: list[ContributionSchedule] = field(default_factory=list)
    errors: list[RejectionError] = field(default_factory=list)
    state: NikState | None = None  # the new state, or None when unchanged
    duplicate_event: bool = False


def error(field_name: str, code: str, message: str) -> RejectionError:
    return rejection(field_name, code, message)


def empty_state() -> NikState:
    return {"enrollments": [], "events": {}}


# --- normalising what people type -------------------------------------------------------


def normalise_name(raw: str) -> str:
    """NFC, single spaces, no leading or trailing blanks."""
    return " ".join(unicodedata.normalize("NFC", raw).split())


def normalise_phone(raw: str) -> str | None:
    """An Indonesian number as +62 and the national digits; None when it is not one.

    Accepts 0812-3456-7890, 0812.3456.7890, (0341) 551234, +62 812 3456 7890,
    +62 (0)812..., 62812..., 0062812... and 812... (a spreadsheet that dropped the 0).
    Mobile numbers (8...) have 9-12 national digits, landlines (area code 2-9) 8-11.
    """
    text = raw.strip()
    if not _PHONE_TEXT.match(text):
        return None
    digits = re.sub(r"[^0-9]", "", text)
    if text.startswith("+"):
        if not digits.startswith("62"):
            return None
        national = digits[2:]
    elif digits.startswith("0062"):
        national = digits[4:]
    elif digits.startswith("62"):
        national = digits[2:]
    elif digits.startswith("0") or digits.startswith("8"):
        national = digits
    else:
        return None
    national = national.lstrip("0")
    if national.startswith("8"):
        ok = 9 <= len(national) <= 12
    else:
        ok = national[:1] in {"2", "3", "4", "5", "6", "7", "9"} and 8 <= len(national) <= 11
    return "+62" + national if ok else None


def _place_key(name: str) -> str:
    text = unicodedata.normalize("NFKC", name).strip()
    stripped = _PLACE_PREFIX.sub("", text)
    return _NOT_ALNUM.sub("", (stripped or text).casefold())


def _match(name: str, known: Iterable[str]) -> str | None:
    wanted = _place_key(name)
    for candidate in known:
        if _place_key(candidate) == wanted:
            return candidate
    return None


def canonical_kecamatan(programme: Programme, name: str) -> str | None:
    """The programme's spelling of a kecamatan; tolerant of case, spacing, hyphens and a
    'Kec.'/'Kecamatan' prefix."""
    return _match(name, programme.kecamatan)


def canonical_kelurahan(programme: Programme, kecamatan: str, name: str) -> str | None:
    return _match(name, programme.kecamatan.get(kecamatan, []))


def canonical_opd(programme: Programme, code: str) -> str | None:
    wanted = code.strip().casefold()
    for known in programme.opds:
        if known.casefold() == wanted:
            return known
    return None


# --- the rules --------------------------------------------------------------------------


def _age_on(born: date, day: date) -> int:
    return day.year - born.year - ((day.month, day.day) < (born.month, born.day))


def _first_day(period: str) -> date:
    year, month0 = divmod(period_index(period), 12)
    return date(year, month0 + 1, 1)


def _check_opd(event: WorkerRegistered | WorkerDeregistered, programme: Programme) -> list[
    RejectionError
]:
    if canonical_opd(programme, event.opd_code) is not None:
        return []
    return [
        error("opd_code", E.UNKNOWN_OPD,
              f"OPD code {E.quote_code(event.opd_code)} may not register workers in programme "
              f"{programme.id}; allowed: {', '.join(sorted(programme.opds))}")
    ]


def _check_nik(worker_nik: str, birth_date: date, sex: str, today: date, prefix: str) -> list[
    RejectionError
]:
    try:
        nik = parse_nik(worker_nik, reference=today)
    except NikError as exc:
        return [error(f"{prefix}nik", exc.code, exc.message)]
    found = []
    if not nik_matches_birth_date(nik, birth_date):
        found.append(
            error(f"{prefix}birth_date", E.NIK_BIRTH_DATE_MISMATCH,
                  "birth_date does not match the birth date in the NIK (digits 7-12, DDMMYY, "
                  "day + 40 for women): check both")
        )
    if nik.sex != sex:
        found.append(
            error(f"{prefix}sex", E.NIK_SEX_MISMATCH,
                  f"sex is {sex} but the NIK is a {'woman' if nik.sex == 'F' else 'man'}'s "
                  "(women have 40 added to the day of birth): check both")
        )
    return found


def _check_place(
    worker_kecamatan: str, worker_kelurahan: str, programme: Programme
) -> list[RejectionError]:
    kecamatan = canonical_kecamatan(programme, worker_kecamatan)
    if kecamatan is None:
        return [
            error("worker.kecamatan", E.UNKNOWN_KECAMATAN,
                  f"kecamatan is not one of the kecamatan of {programme.city}: "
                  f"{', '.join(programme.kecamatan)}")
        ]
    if canonical_kelurahan(programme, kecamatan, worker_kelurahan) is not None:
        return []
    elsewhere = [k for k in programme.kecamatan if canonical_kelurahan(programme, k,
                                                                       worker_kelurahan)]
    hint = (f"; that kelurahan is in kecamatan {', '.join(elsewhere)}" if elsewhere else
            f"; its kelurahan are {', '.join(programme.kecamatan[kecamatan])}")
    return [
        error("worker.kelurahan", E.UNKNOWN_KELURAHAN,
              f"kelurahan is not in kecamatan {kecamatan}{hint}")
    ]


def _check_coverage(event: WorkerRegistered, programme: Programme, today: date) -> list[
    RejectionError
]:
    found = []
    if not 1 <= event.months <= programme.months:
        found.append(
            error("months", E.INVALID_MONTHS,
                  f"months must be from 1 to {programme.months} in programme {programme.id}")
        )
    start = period_index(event.coverage_start)
    if start < period_index(programme.first_period):
        found.append(
            error("coverage_start", E.COVERAGE_BEFORE_PROGRAMME,
                  f"coverage_start {event.coverage_start} is before programme {programme.id} "
                  f"starts ({programme.first_period})")
        )
    elif start > period_index(programme.last_period):
        found.append(
            error("coverage_start", E.COVERAGE_AFTER_PROGRAMME,
                  f"coverage_start {event.coverage_start} is after programme {programme.id} "
                  f"ends ({programme.last_period})")
        )
    born = event.worker.birth_date
    if born > today:
        found.append(error("worker.birth_date", E.INVALID_DATE, "birth_date is in the future"))
        return found
    age = _age_on(born, _first_day(event.coverage_start))
    limits = programme.eligibility
    if not limits.min_age <= age <= limits.max_age:
        found.append(
            error("worker.birth_date", E.AGE_OUT_OF_RANGE,
                  f"worker is {age} years old at coverage start {event.coverage_start}; "
                  f"programme {programme.id} covers ages {limits.min_age} to {limits.max_age}")
        )
    return found


def check_registration(
    event: WorkerRegistered, programme: Programme, today: date
) -> list[RejectionError]:
    """Every rule of the programme that the registration breaks (empty when it is valid)."""
    worker = event.worker
    errors = _check_opd(event, programme)
    errors += _check_nik(worker.nik, worker.birth_date, worker.sex, today, "worker.")
    name = normalise_name(worker.full_name)
    if len(name) < 2 or not _NAME_OK.match(name):
        errors.append(
            error("worker.full_name", E.INVALID_NAME,
                  "full_name must be the worker's name as on the KTP: at least 2 characters, "
                  "starting with a letter, then letters, spaces and . , ' - only (no digits)")
        )
    if worker.phone is not None and worker.phone.strip() and normalise_phone(worker.phone) is None:
        errors.append(
            error("worker.phone", E.INVALID_PHONE,
                  "phone is not an Indonesian phone number (e.g. 0812-3456-7890, +62 812 3456 "
                  "7890 or (0341) 551234); leave it empty if unknown")
        )
    if worker.category not in programme.eligibility.categories:
        errors.append(
            error("worker.category", E.CATEGORY_NOT_ELIGIBLE,
                  f"category {worker.category.value} is not covered by programme {programme.id}; "
                  f"covered: {', '.join(c.value for c in programme.eligibility.categories)}")
        )
    errors += _check_place(worker.kecamatan, worker.kelurahan, programme)
    errors += _check_coverage(event, programme, today)
    return errors


# --- decisions over the state of one NIK ------------------------------------------------


def _held_periods(enrollment: Mapping[str, Any]) -> set[str]:
    return set(enrollment["periods"]) - set(enrollment.get("cancelled", []))


def generations(earlier: Iterable[Mapping[str, Any]], periods: Iterable[str]) -> dict[str, int]:
    """The generation of each of ``periods`` for an enrolment that follows the ``earlier``
    enrolments of its NIK: how many of them had the month cancelled. Months of generation 0
    are left out."""
    wanted = set(periods)
    found: dict[str, int] = {}
    for enrollment in earlier:
        for period in wanted.intersection(enrollment.get("cancelled", ())):
            found[period] = found.get(period, 0) + 1
    return found


def describe_periods(periods: Iterable[str]) -> str:
    """'2025-12 to 2026-03, 2026-06' for a set of months."""
    indexes = sorted({period_index(p) for p in periods})
    runs: list[tuple[int, int]] = []
    for index in indexes:
        if runs and runs[-1][1] == index - 1:
            runs[-1] = (runs[-1][0], index)
        else:
            runs.append((index, index))
    return ", ".join(
        period_from_index(a) if a == b else f"{period_from_index(a)} to {period_from_index(b)}"
        for a, b in runs
    )


def _duplicate_errors(
    periods: list[str], enrollments: list[dict[str, Any]]
) -> tuple[list[str], list[RejectionError]]:
    """The months still free and one duplicate_enrollment error per holder of the others."""
    holder_of: dict[str, tuple[str, str]] = {}
    for enrollment in enrollments:
        for period in _held_periods(enrollment):
            holder_of.setdefault(period, (enrollment["opd_code"], enrollment["programme"]))
    taken: dict[tuple[str, str], list[str]] = {}
    for period in periods:
        if period in holder_of:
            taken.setdefault(holder_of[period], []).append(period)
    found = [
        error("worker.nik", E.DUPLICATE_ENROLLMENT,
              f"worker is already covered for {describe_periods(months)} by OPD {opd} in "
              f"programme {programme}; those months are not paid twice")
        for (opd, programme), months in taken.items()
    ]
    return [p for p in periods if p not in holder_of], found


def _canonical_event(event: WorkerRegistered, programme: Programme) -> WorkerRegistered:
    worker = event.worker
    kecamatan = canonical_kecamatan(programme, worker.kecamatan) or worker.kecamatan
    kelurahan = canonical_kelurahan(programme, kecamatan, worker.kelurahan) or worker.kelurahan
    opd = canonical_opd(programme, event.opd_code) or event.opd_code
    return event.model_copy(
        update={
            "opd_code": opd,
            "worker": worker.model_copy(update={"kecamatan": kecamatan, "kelurahan": kelurahan}),
        }
    )


def decide_registration(
    state: NikState, event: WorkerRegistered, programme: Programme, today: date
) -> Decision:
    event_key = str(event.event_id)
    if event_key in state["events"]:
        return _replay(state, event_key, programme, event)
    errors = check_registration(event, programme, today)
    new_state: NikState = {
        "enrollments": list(state["enrollments"]), "events": dict(state["events"])
    }
    periods: list[str] = []
    if not errors:
        wanted = covered_periods(programme, event.coverage_start, event.months)
        periods, errors = _duplicate_errors(wanted, state["enrollments"])
    if not periods:
        new_state["events"][event_key] = "rejected"
        return Decision(errors=errors, state=new_state)
    event = _canonical_event(event, programme)
    months_again = generations(state["enrollments"], periods)
    new_state["enrollments"].append(
        {
            "event_id": event_key,
            "programme": programme.id,
            "opd_code": event.opd_code,
            "category": event.worker.category.value,
            "kecamatan": event.worker.kecamatan,
            "funding_source": programme.funding_source,
            "periods": periods,
            "cancelled": [],
            "cancellations": {},
        }
    )
    new_state["events"][event_key] = "accepted"
    return Decision(
        schedules=[due_schedule(programme, event, periods, months_again)], errors=errors,
        state=new_state,
    )


def decide_deregistration(
    state: NikState, event: WorkerDeregistered, programme: Programme, today: date
) -> Decision:
    """Stop paying from ``effective_period`` on, in every enrolment of this programme."""
    event_key = str(event.event_id)
    if event_key in state["events"]:
        return _replay(state, event_key, programme, event)
    errors = _check_opd(event, programme)
    try:
        parse_nik(event.nik, reference=today)
    except NikError as exc:
        errors.append(error("nik", exc.code, exc.message))
    new_state: NikState = {
        "enrollments": [dict(e) for e in state["enrollments"]], "events": dict(state["events"])
    }
    schedules: list[ContributionSchedule] = []
    if not errors:
        first_stopped = period_index(event.effective_period)
        for index, enrollment in enumerate(new_state["enrollments"]):
            if enrollment["programme"] != programme.id:
                continue
            stop = sorted(p for p in _held_periods(enrollment) if period_index(p) >= first_stopped)
            if stop:
                enrollment["cancelled"] = sorted(set(enrollment.get("cancelled", [])) | set(stop))
                enrollment["cancellations"] = {
                    **enrollment.get("cancellations", {}), event_key: stop
                }
                earlier = state["enrollments"][:index]
                schedules.append(_cancelled(programme, event, enrollment, stop, earlier))
        if not schedules:
            errors.append(
                error("nik", E.NOT_ENROLLED,
                      f"worker has no paid month from {event.effective_period} on in "
                      f"programme {programme.id}: nothing to stop")
            )
    new_state["events"][event_key] = "accepted" if schedules else "rejected"
    return Decision(schedules=schedules, errors=errors, state=new_state)


def _cancelled(
    programme: Programme, event: WorkerDeregistered, enrollment: Mapping[str, Any],
    stop: list[str], earlier: list[dict[str, Any]],
) -> ContributionSchedule:
    """The cancellation of ``stop`` in one enrolment: the ids of the generation that
    enrolment pays (``earlier`` are the enrolments of the NIK accepted before it)."""
    held = ContributionSchedule.model_construct(
        opd_code=enrollment["opd_code"],
        category=enrollment["category"],
        kecamatan=enrollment["kecamatan"],
        funding_source=enrollment["funding_source"],
    )
    schedule = cancelled_schedule(programme, event, held, stop, generations(earlier, stop))
    # One deregistration can stop several enrolments (two OPDs, other months): one id each.
    schedule_id = derived_id("schedule", "cancelled", str(event.event_id), enrollment["event_id"])
    return schedule.model_copy(update={"schedule_id": schedule_id})


def _replay(
    state: NikState,
    event_key: str,
    programme: Programme,
    event: WorkerRegistered | WorkerDeregistered,
) -> Decision:
    """An event seen before: no new effect and no second rejection. An accepted one
    re-emits the identical schedules (same ids, so every sink ignores them) in case the
    first emission was lost in a crash."""
    if state["events"][event_key] != "accepted":
        return Decision(duplicate_event=True)
    schedules: list[ContributionSchedule] = []
    enrollments = state["enrollments"]
    for index, enrollment in enumerate(enrollments):
        if isinstance(event, WorkerRegistered) and enrollment["event_id"] == event_key:
            worker = event.worker.model_copy(update={"kecamatan": enrollment["kecamatan"]})
            original = event.model_copy(
                update={"worker": worker, "opd_code": enrollment["opd_code"]}
            )
            periods = enrollment["periods"]
            schedules.append(due_schedule(programme, original, periods,
                                          generations(enrollments[:index], periods)))
        elif isinstance(event, WorkerDeregistered):
            stop = enrollment.get("cancellations", {}).get(event_key)
            if stop:
                schedules.append(
                    _cancelled(programme, event, enrollment, stop, enrollments[:index]))
    return Decision(schedules=schedules, duplicate_event=True)


# --- the stream edge --------------------------------------------------------------------


def decode_registration(
    raw: bytes | str | None, *, max_bytes: int = MAX_MESSAGE_BYTES
) -> tuple[WorkerRegistered | WorkerDeregistered | None, list[RejectionError]]:
    """Decode one message value: the event, or None and the rejections that say why."""
    if raw is None:
        return None, [E.malformed("message has no value (a tombstone or an empty message)")]
    size = len(raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else raw)
    if size > max_bytes:
        return None, [E.message_too_large(size, max_bytes)]
    if isinstance(raw, bytes):
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError:
            return None, [E.malformed("message is not UTF-8 text")]
    try:
        return parse_registration(raw), []
    except ValidationError as exc:
        return None, rejections_from_validation_error(exc)


def decide(
    state: NikState,
    event: WorkerRegistered | WorkerDeregistered,
    programmes: Mapping[str, Programme],
    today: date,
) -> Decision:
    """Look the programme up and apply the rules of the event's type."""
    programme = programmes.get(event.programme)
    if programme is None:
        event_key = str(event.event_id)
        if event_key in state["events"]:
            return Decision(duplicate_event=True)
        new_state: NikState = {
            "enrollments": list(state["enrollments"]),
            "events": {**state["events"], event_key: "rejected"},
        }
        return Decision(errors=[E.unknown_programme(event.programme, programmes)],
                        state=new_state)
    if isinstance(event, WorkerRegistered):
        return decide_registration(state, event, programme, today)
    return decide_deregistration(state, event, programme, today)
