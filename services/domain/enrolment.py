"""The enrolment state machine of one NIK: a decoded event plus the worker's enrolment
state give a decision (a contribution schedule, rejections, warnings) and the next state.
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

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from schemas.events import (
    ContributionSchedule,
    RejectionError,
    WorkerDeregistered,
    WorkerRegistered,
)
from services.domain import errors as E
from services.domain.errors import rejection
from services.domain.periods import period_from_index, period_index
from services.domain.places import canonical_kecamatan, canonical_kelurahan, canonical_opd
from services.domain.programme import Programme
from services.domain.rules import check_deregistration, check_registration, registration_warnings
from services.domain.schedule import (
    cancelled_schedule,
    covered_periods,
    derived_id,
    due_schedule,
)

__all__ = [
    "Decision",
    "NikState",
    "decide",
    "decide_deregistration",
    "decide_registration",
    "describe_periods",
    "empty_state",
    "generations",
]

NikState = dict[str, Any]


@dataclass
class Decision:
    """What the validator emits for one event.

    ``schedules`` and ``errors`` can both be non-empty: a registration whose months partly
    overlap another payer's is accepted for the other months and rejected for those.
    ``warnings`` travel with an accepted registration (and its schedule).
    """

    schedules: list[ContributionSchedule] = field(default_factory=list)
    errors: list[RejectionError] = field(default_factory=list)
    state: NikState | None = None  # the new state, or None when unchanged
    duplicate_event: bool = False
    warnings: list[RejectionError] = field(default_factory=list)


def empty_state() -> NikState:
    return {"enrollments": [], "events": {}}


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
        rejection("worker.nik", E.DUPLICATE_ENROLLMENT,
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
    warnings = registration_warnings(event, today)
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
            "warnings": [w.model_dump() for w in warnings],
        }
    )
    new_state["events"][event_key] = "accepted"
    return Decision(
        schedules=[due_schedule(programme, event, periods, months_again, warnings)],
        errors=errors, state=new_state, warnings=warnings,
    )


def decide_deregistration(
    state: NikState, event: WorkerDeregistered, programme: Programme, today: date
) -> Decision:
    """Stop paying from ``effective_period`` on, in every enrolment of this programme."""
    event_key = str(event.event_id)
    if event_key in state["events"]:
        return _replay(state, event_key, programme, event)
    errors = check_deregistration(event, programme, today)
    new_state: NikState = {
        "enrollments": [dict(e) for e in state["enrollments"]], "events": dict(state["events"])
    }
    schedules: list[ContributionSchedule] = []
    if not errors:
        first_stopped = period_index(event.effective_period)
        opd = canonical_opd(programme, event.opd_code)
        refused_by: set[str] = set()
        for index, enrollment in enumerate(new_state["enrollments"]):
            if enrollment["programme"] != programme.id:
                continue
            stop = sorted(p for p in _held_periods(enrollment) if period_index(p) >= first_stopped)
            if stop and not _may_stop(programme, opd, enrollment):
                refused_by.add(enrollment["opd_code"])
            elif stop:
                enrollment["cancelled"] = sorted(set(enrollment.get("cancelled", [])) | set(stop))
                enrollment["cancellations"] = {
                    **enrollment.get("cancellations", {}), event_key: stop
                }
                earlier = state["enrollments"][:index]
                schedules.append(_cancelled(programme, event, enrollment, stop, earlier))
        errors += [_not_permitted(programme, opd or event.opd_code, holder)
                   for holder in sorted(refused_by)]
        if not schedules and not refused_by:
            errors.append(
                rejection("nik", E.NOT_ENROLLED,
                      f"worker has no paid month from {event.effective_period} on in "
                      f"programme {programme.id}: nothing to stop")
            )
    new_state["events"][event_key] = "accepted" if schedules else "rejected"
    return Decision(schedules=schedules, errors=errors, state=new_state)


def _may_stop(programme: Programme, opd: str | None, enrollment: Mapping[str, Any]) -> bool:
    """Only the OPD that enrolled a worker, or a coordinator of the programme, stops it."""
    return opd is not None and (opd == enrollment["opd_code"] or opd in programme.coordinators)


def _not_permitted(programme: Programme, opd: str, holder: str) -> RejectionError:
    coordinators = ", ".join(programme.coordinators) or "none"
    return rejection(
        "opd_code", E.DEREGISTRATION_NOT_PERMITTED,
        f"OPD {E.quote_code(opd)} may not stop an enrolment of OPD {holder}: only the OPD "
        f"that enrolled the worker or a coordinating OPD of programme {programme.id} "
        f"({coordinators}) may")


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
            warnings = [RejectionError(**w) for w in enrollment.get("warnings", ())]
            schedules.append(due_schedule(programme, original, periods,
                                          generations(enrollments[:index], periods), warnings))
        elif isinstance(event, WorkerDeregistered):
            stop = enrollment.get("cancellations", {}).get(event_key)
            if stop:
                schedules.append(
                    _cancelled(programme, event, enrollment, stop, enrollments[:index]))
    return Decision(schedules=schedules, duplicate_event=True)


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
