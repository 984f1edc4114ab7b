"""The enrolment state machine of one NIK: a decoded event plus the worker's enrolment
state give a decision (a contribution schedule, rejections, warnings) and the next state.

The state of one NIK is a typed, versioned record, :class:`WorkerState` (the validator
keeps it as JSON in ``registry.worker_state``), read through :func:`read_state`, the one
place where a layout of another version would be upgraded on purpose; a version it does
not know is refused. Version 2 (:data:`STATE_VERSION`) keeps the NIK's enrolments and, per
event, its outcome, the fingerprint of the message that decided it and, for a rejection,
its errors, so that a redelivery of that message re-emits identical outputs and another
message reusing the event id is told so.

A month can be paid, cancelled by a deregistration and paid again by a later registration.
Each time it is paid again it is a new *generation* of that worker-month, with contribution
ids of its own (so that the ledger books it instead of taking it for a replay). The
generation is not stored: for an enrolment it is how many earlier enrolments of the NIK (in
any programme) have the month in their ``cancelled`` list. That count never changes once
the enrolment is accepted (a month is only accepted when no enrolment holds it, and a month
an enrolment does not hold never enters its ``cancelled`` list), so a replay emits the same
ids.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas.events import (
    AnyRegistration,
    ContributionSchedule,
    RejectionError,
    WorkerCorrected,
    WorkerDeregistered,
    WorkerRegistered,
)
from services.domain import errors as E
from services.domain.errors import rejection
from services.domain.periods import period_from_index, period_index
from services.domain.places import canonical_kecamatan, canonical_opd
from services.domain.programme import Programme
from services.domain.rules import (
    check_correction,
    check_deregistration,
    check_registration,
    correction_warnings,
    registration_warnings,
)
from services.domain.schedule import (
    cancelled_schedule,
    covered_periods,
    derived_id,
    due_schedule,
)

__all__ = [
    "STATE_VERSION",
    "Decision",
    "Enrolment",
    "EventRecord",
    "cover_gap",
    "WorkerState",
    "decide",
    "decide_correction",
    "decide_deregistration",
    "decide_registration",
    "describe_periods",
    "empty_state",
    "generations",
    "read_state",
]

STATE_VERSION: Literal[2] = 2


class _State(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Enrolment(_State):
    """One accepted registration of the NIK and what became of its months."""

    event_id: str
    programme: str
    opd_code: str
    category: str
    kecamatan: str
    funding_source: str
    periods: list[str]
    cancelled: list[str] = Field(default_factory=list)
    cancellations: dict[str, list[str]] = Field(default_factory=dict)  # dereg event -> months
    warnings: list[RejectionError] = Field(default_factory=list)

    def active_periods(self) -> set[str]:
        """The months this enrolment pays: its periods that no deregistration stopped."""
        return set(self.periods) - set(self.cancelled)


class EventRecord(_State):
    """How one event of the NIK was decided."""

    outcome: Literal["accepted", "rejected"]
    message: str | None = None  # fingerprint of the message that decided it (None: unknown)
    errors: list[RejectionError] = Field(default_factory=list)  # re-sent on a redelivery


class WorkerState(_State):
    version: Literal[2] = STATE_VERSION
    enrollments: list[Enrolment] = Field(default_factory=list)
    events: dict[str, EventRecord] = Field(default_factory=dict)


def read_state(document: Mapping[str, Any] | str | bytes | None,
               version: int | None = None) -> WorkerState:
    """The state of a NIK from its stored document (a dict, or its JSON text).

    ``version`` is the stored layout version (else the document's own ``version`` key).
    Raises ValueError for a version this release does not know (a state written by a newer
    release is never guessed at). JSON text is validated in one pass, without a dict in
    between."""
    if document is None:
        return empty_state()
    if isinstance(document, str | bytes):
        if version == STATE_VERSION:
            return WorkerState.model_validate_json(document)
        document = json.loads(document)
        if not isinstance(document, Mapping):
            raise ValueError("a worker state must be a JSON object")
    layout = version if version is not None else document.get("version")
    if layout != STATE_VERSION:
        raise ValueError(f"worker state version {layout} is not known to this release")
    return WorkerState.model_validate({**document, "version": STATE_VERSION})


@dataclass
class Decision:
    """What the validator emits for one event.

    ``schedules`` and ``errors`` can both be non-empty: a registration whose months partly
    overlap another payer's is accepted for the other months and rejected for those.
    ``warnings`` travel with an accepted registration (and its schedule).
    """

    schedules: list[ContributionSchedule] = field(default_factory=list)
    errors: list[RejectionError] = field(default_factory=list)
    state: WorkerState | None = None  # the new state, or None when unchanged
    duplicate_event: bool = False
    warnings: list[RejectionError] = field(default_factory=list)


def empty_state() -> WorkerState:
    return WorkerState()


def _decided(state: WorkerState, event_key: str, message: str | None,
             errors: list[RejectionError], accepted: bool,
             enrollments: list[Enrolment] | None = None) -> WorkerState:
    record = EventRecord.model_construct(outcome="accepted" if accepted else "rejected",
                                         message=message, errors=list(errors))
    return WorkerState.model_construct(
        version=STATE_VERSION,
        enrollments=list(state.enrollments) if enrollments is None else enrollments,
        events={**state.events, event_key: record},
    )


def generations(earlier: Iterable[Enrolment], periods: Iterable[str]) -> dict[str, int]:
    """The generation of each of ``periods`` for an enrolment that follows the ``earlier``
    enrolments of its NIK: how many of them had the month cancelled. Months of generation 0
    are left out."""
    wanted = set(periods)
    found: dict[str, int] = {}
    for enrollment in earlier:
        for period in wanted.intersection(enrollment.cancelled):
            found[period] = found.get(period, 0) + 1
    return found


# Three unpaid months make a BPJS membership inactive.
LAPSE_MONTHS = 3


def cover_gap(earlier: Iterable[Enrolment], periods: Iterable[str]) -> list[RejectionError]:
    """A ``cover_gap`` warning when the worker was covered before (by any programme) and the
    first of ``periods`` comes three or more months after the last covered month before it:
    the membership lapsed at BPJS in between, and the 3-month minimum restarts."""
    first = min((period_index(p) for p in periods), default=None)
    if first is None:
        return []
    before = [period_index(p) for e in earlier for p in e.active_periods()
              if period_index(p) < first]
    if not before or first - max(before) - 1 < LAPSE_MONTHS:
        return []
    last = period_from_index(max(before))
    unpaid = first - max(before) - 1
    return [rejection(
        "coverage_start", E.COVER_GAP,
        f"the worker's cover ended with {last}: {unpaid} months without cover before "
        f"{period_from_index(first)} made the membership inactive at BPJS; accepted, but the "
        "3-month minimum membership restarts (a death within it pays Rp10 million, not Rp42 "
        "million)")]


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
    periods: list[str], enrollments: list[Enrolment]
) -> tuple[list[str], list[RejectionError]]:
    """The months still free and one duplicate_enrollment error per holder of the others."""
    holder_of: dict[str, tuple[str, str]] = {}
    for enrollment in enrollments:
        for period in enrollment.active_periods():
            holder_of.setdefault(period, (enrollment.opd_code, enrollment.programme))
    taken: dict[tuple[str, str], list[str]] = {}
    for period in periods:
        if period in holder_of:
            taken.setdefault(holder_of[period], []).append(period)
    found = [
        rejection("worker.nik", E.DUPLICATE_ENROLLMENT,
              f"worker is already covered for {describe_periods(months)} by OPD {opd} in "
              f"programme {programme}; those months are not paid twice")
        for (opd, programme), months in taken.items()
    ]
    return [p for p in periods if p not in holder_of], found


def decide_registration(
    state: WorkerState, event: WorkerRegistered, programme: Programme, today: date,
    message: str | None = None,
) -> Decision:
    event_key = str(event.event_id)
    if event_key in state.events:
        return _replay(state, event_key, programme, event, message)
    errors = check_registration(event, programme, today)
    periods: list[str] = []
    if not errors:
        wanted = covered_periods(programme, event.coverage_start, event.months)
        periods, errors = _duplicate_errors(wanted, state.enrollments)
    if not periods:
        return Decision(errors=errors, state=_decided(state, event_key, message, errors, False))
    worker = event.worker
    # the programme's spellings (rules have checked that both are known)
    kecamatan = canonical_kecamatan(programme, worker.kecamatan) or worker.kecamatan
    opd = canonical_opd(programme, event.opd_code) or event.opd_code
    months_again = generations(state.enrollments, periods)
    warnings = registration_warnings(event, today) + cover_gap(state.enrollments, periods)
    enrolment = Enrolment.model_construct(  # every value checked by the rules above
        event_id=event_key,
        programme=programme.id,
        opd_code=opd,
        category=worker.category.value,
        kecamatan=kecamatan,
        funding_source=programme.funding_source,
        periods=periods,
        cancelled=[],
        cancellations={},
        warnings=warnings,
    )
    new_state = _decided(state, event_key, message, errors, True,
                         [*state.enrollments, enrolment])
    schedule = due_schedule(programme, event, periods, months_again, warnings,
                            opd_code=opd, kecamatan=kecamatan)
    return Decision(schedules=[schedule], errors=errors, state=new_state, warnings=warnings)


def decide_deregistration(
    state: WorkerState, event: WorkerDeregistered, programme: Programme, today: date,
    message: str | None = None,
) -> Decision:
    """Stop paying from ``effective_period`` on, in every enrolment of this programme."""
    event_key = str(event.event_id)
    if event_key in state.events:
        return _replay(state, event_key, programme, event, message)
    errors = check_deregistration(event, programme, today)
    enrollments = list(state.enrollments)
    schedules: list[ContributionSchedule] = []
    if not errors:
        first_stopped = period_index(event.effective_period)
        opd = canonical_opd(programme, event.opd_code)
        refused_by: set[str] = set()
        for index, enrollment in enumerate(enrollments):
            if enrollment.programme != programme.id:
                continue
            stop = sorted(p for p in enrollment.active_periods()
                          if period_index(p) >= first_stopped)
            if stop and not _may_stop(programme, opd, enrollment):
                refused_by.add(enrollment.opd_code)
            elif stop:
                enrollments[index] = enrollment.model_copy(update={
                    "cancelled": sorted(set(enrollment.cancelled) | set(stop)),
                    "cancellations": {**enrollment.cancellations, event_key: stop},
                })
                earlier = state.enrollments[:index]
                schedules.append(_cancelled(programme, event, enrollment, stop, earlier))
        errors += [_not_permitted(programme, opd or event.opd_code, holder)
                   for holder in sorted(refused_by)]
        if not schedules and not refused_by:
            errors.append(
                rejection("nik", E.NOT_ENROLLED,
                      f"worker has no paid month from {event.effective_period} on in "
                      f"programme {programme.id}: nothing to stop")
            )
    new_state = _decided(state, event_key, message, errors, bool(schedules), enrollments)
    return Decision(schedules=schedules, errors=errors, state=new_state)


def decide_correction(
    state: WorkerState, event: WorkerCorrected, programme: Programme, today: date,
    message: str | None = None,
) -> Decision:
    """A correction of the worker's fields by the OPD that enrolled the worker in the
    programme: accepted or rejected, it changes no month (the registry keeps it)."""
    event_key = str(event.event_id)
    if event_key in state.events:
        return _replay(state, event_key, programme, event, message)
    errors = check_correction(event, programme, today)
    if not errors:
        opd = canonical_opd(programme, event.opd_code)
        enrolled_by = {e.opd_code for e in state.enrollments if e.programme == programme.id}
        if not enrolled_by:
            errors.append(rejection(
                "nik", E.NOT_ENROLLED,
                f"programme {programme.id} never enrolled this worker: nothing to correct"))
        elif opd not in enrolled_by:
            errors.append(rejection(
                "opd_code", E.CORRECTION_NOT_PERMITTED,
                f"OPD {E.quote_code(opd or event.opd_code)} may not correct a worker enrolled "
                f"in programme {programme.id} by OPD {', '.join(sorted(enrolled_by))}: only "
                "the OPD that enrolled the worker corrects the worker's data"))
    warnings = [] if errors else correction_warnings(event, today)
    new_state = _decided(state, event_key, message, errors, not errors)
    return Decision(errors=errors, state=new_state, warnings=warnings)


def _may_stop(programme: Programme, opd: str | None, enrollment: Enrolment) -> bool:
    """Only the OPD that enrolled a worker, or a coordinator of the programme, stops it."""
    return opd is not None and (opd == enrollment.opd_code or opd in programme.coordinators)


def _not_permitted(programme: Programme, opd: str, holder: str) -> RejectionError:
    coordinators = ", ".join(programme.coordinators) or "none"
    return rejection(
        "opd_code", E.DEREGISTRATION_NOT_PERMITTED,
        f"OPD {E.quote_code(opd)} may not stop an enrolment of OPD {holder}: only the OPD "
        f"that enrolled the worker or a coordinating OPD of programme {programme.id} "
        f"({coordinators}) may")


def _cancelled(
    programme: Programme, event: WorkerDeregistered, enrollment: Enrolment,
    stop: list[str], earlier: list[Enrolment],
) -> ContributionSchedule:
    """The cancellation of ``stop`` in one enrolment: the ids of the generation that
    enrolment pays (``earlier`` are the enrolments of the NIK accepted before it)."""
    accepted = ContributionSchedule.model_construct(
        opd_code=enrollment.opd_code,
        category=enrollment.category,
        kecamatan=enrollment.kecamatan,
        funding_source=enrollment.funding_source,
    )
    schedule = cancelled_schedule(programme, event, accepted, stop, generations(earlier, stop))
    # One deregistration can stop several enrolments (two OPDs, other months): one id each.
    schedule_id = derived_id("schedule", "cancelled", str(event.event_id), enrollment.event_id)
    return schedule.model_copy(update={"schedule_id": schedule_id})


def _replay(
    state: WorkerState,
    event_key: str,
    programme: Programme,
    event: AnyRegistration,
    message: str | None,
) -> Decision:
    """An event seen before: no new effect. A redelivery of the message that decided it
    re-emits identical outputs (the same schedules, so every sink ignores them, and the same
    rejections) in case the first emission was lost in a crash. Another message reusing the
    event id (an upload sent again) is told that the event was decided once, when the worker
    is not enrolled by it any more (it was rejected, or its months were stopped since): it is
    never swallowed by a replay of old, cancelled contribution ids."""
    record = state.events[event_key]
    redelivery = _redelivery(record, message)
    enrollments = state.enrollments
    own = next((i for i, e in enumerate(enrollments) if e.event_id == event_key), None)
    if not redelivery and (record.outcome == "rejected"
                           or (own is not None and enrollments[own].cancelled)):
        return Decision(errors=[_already_decided(record, enrollments, own)],
                        duplicate_event=True)
    if record.outcome != "accepted":
        return Decision(errors=_errors_again(record, message), duplicate_event=True)
    schedules: list[ContributionSchedule] = []
    if isinstance(event, WorkerRegistered):
        if own is not None:
            enrollment = enrollments[own]
            schedules.append(due_schedule(programme, event, enrollment.periods,
                                          generations(enrollments[:own], enrollment.periods),
                                          list(enrollment.warnings),
                                          opd_code=enrollment.opd_code,
                                          kecamatan=enrollment.kecamatan))
    elif isinstance(event, WorkerDeregistered):
        for index, enrollment in enumerate(enrollments):
            stop = enrollment.cancellations.get(event_key)
            if stop:
                schedules.append(
                    _cancelled(programme, event, enrollment, stop, enrollments[:index]))
    return Decision(schedules=schedules, errors=_errors_again(record, message),
                    duplicate_event=True)


def _redelivery(record: EventRecord, message: str | None) -> bool:
    """Is this the message that decided the event (or can that not be told)?"""
    return message is None or record.message is None or record.message == message


def _errors_again(record: EventRecord, message: str | None) -> list[RejectionError]:
    """The rejections to send again for a redelivery: those of the first decision when the
    message is known to be the same one (without a fingerprint, none: it may have been
    sent already)."""
    same = message is not None and record.message == message
    return list(record.errors) if same else []


def _already_decided(record: EventRecord, enrollments: list[Enrolment],
                     own: int | None) -> RejectionError:
    if record.outcome == "rejected" or own is None:
        what = "was decided before and rejected"
    else:
        stopped = describe_periods(enrollments[own].cancelled)
        what = f"was accepted before and its months {stopped} were stopped by a deregistration"
    return rejection(
        "event_id", E.EVENT_ALREADY_DECIDED,
        f"this event_id {what}; an event is decided once, so nothing was changed: to enrol "
        "the worker again send a new registration with a new event_id (an uploaded row gets "
        "a new one when one of its values changes, e.g. coverage_start)")


def decide(
    state: WorkerState,
    event: AnyRegistration,
    programmes: Mapping[str, Programme],
    today: date,
    message: str | None = None,
) -> Decision:
    """Look the programme up and apply the rules of the event's type. ``message`` is a
    fingerprint of the message the event came in (it tells a redelivery from another message
    reusing the event id); None treats every repeat as a redelivery."""
    programme = programmes.get(event.programme)
    if programme is None:
        event_key = str(event.event_id)
        errors = [E.unknown_programme(event.programme, programmes)]
        if event_key in state.events:
            record = state.events[event_key]
            if _redelivery(record, message):
                return Decision(errors=_errors_again(record, message), duplicate_event=True)
            own = next((i for i, e in enumerate(state.enrollments) if e.event_id == event_key),
                       None)
            return Decision(errors=[_already_decided(record, state.enrollments, own)],
                            duplicate_event=True)
        return Decision(errors=errors, state=_decided(state, event_key, message, errors, False))
    if isinstance(event, WorkerRegistered):
        return decide_registration(state, event, programme, today, message)
    if isinstance(event, WorkerCorrected):
        return decide_correction(state, event, programme, today, message)
    return decide_deregistration(state, event, programme, today, message)
