"""Turn one raw registration message into what the validator must send and record.

Kept apart from Faust and PostgreSQL: decode → the worker's state → the domain → outputs
(schedules, a rejection, the new state and the decision row of registry.decisions).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC

from schemas.events import (
    AnyRegistration,
    ContributionSchedule,
    RejectedEvent,
    RejectionError,
    WorkerCorrected,
)
from services.domain import errors as E
from services.domain.enrolment import WorkerState, decide
from services.domain.errors import message_fingerprint, rejected_event, rejection
from services.domain.nik import nik_of
from services.domain.places import canonical_opd
from services.domain.programme import Programme
from services.validator.decode import decode_registration

Event = AnyRegistration


@dataclass(frozen=True)
class Source:
    topic: str
    partition: int
    offset: int


@dataclass(frozen=True)
class Incoming:
    """One message, decoded. ``nik`` is set when it is an event keyed by its NIK (only
    those touch a worker's state)."""

    key: bytes | None
    value: bytes | None
    source: Source
    event: Event | None
    problems: list[RejectionError]
    nik: str | None
    fingerprint: str


@dataclass
class Outcome:
    incoming: Incoming
    schedules: list[ContributionSchedule] = field(default_factory=list)
    rejected: RejectedEvent | None = None
    state: WorkerState | None = None  # the NIK's new state, None when unchanged
    duplicate_event: bool = False
    warnings: list[RejectionError] = field(default_factory=list)
    programme: str = "unknown"  # a metrics label: only configured programme ids
    event_type: str = "unknown"
    opd_code: str | None = None  # the OPD that sent the event, in the programme's spelling

    @property
    def nik(self) -> str | None:
        return self.incoming.nik


def read_message(key: bytes | None, value: bytes | None, source: Source) -> Incoming:
    event, problems = decode_registration(value)
    nik = None
    if event is not None:
        claimed = nik_of(event)
        if key is not None and key == claimed.encode():
            nik = claimed
        else:
            problems = [rejection(
                "key", E.KEY_MISMATCH,
                "the message key must be the worker's NIK (it decides the partition)")]
    return Incoming(key, value, source, event, problems, nik, message_fingerprint(value))


def _reject(incoming: Incoming, errors: list[RejectionError]) -> RejectedEvent:
    event, source = incoming.event, incoming.source
    if event is None:
        return rejected_event(incoming.value, source.topic, source.partition, source.offset,
                              errors)
    return rejected_event(incoming.value, source.topic, source.partition, source.offset,
                          errors, event_id=str(event.event_id), opd_code=event.opd_code,
                          programme=event.programme)


def decide_message(
    incoming: Incoming, state: WorkerState, programmes: dict[str, Programme]
) -> Outcome:
    """Decide what one message produces, given its NIK's state (ignored when the message
    is not an event keyed by its NIK)."""
    event = incoming.event
    if event is None or incoming.nik is None:
        return Outcome(incoming, rejected=_reject(incoming, incoming.problems))
    # Decisions depend on the event alone (never on the clock), so a replay decides the same:
    # its day is the day it occurred in the programme's time zone.
    programme = programmes.get(event.programme)
    day = (programme.today(event.occurred_at) if programme is not None
           else event.occurred_at.astimezone(UTC).date())
    decision = decide(state, event, programmes, day, incoming.fingerprint)
    outcome = Outcome(
        incoming,
        schedules=decision.schedules,
        state=decision.state,
        duplicate_event=decision.duplicate_event,
        warnings=decision.warnings,
        programme=event.programme if event.programme in programmes else "unknown",
        event_type=event.event_type,
        opd_code=_sender(event, programmes),
    )
    if decision.errors:
        outcome.rejected = _reject(incoming, decision.errors)
    return outcome


def _sender(event: Event, programmes: dict[str, Programme]) -> str:
    """The OPD that sent the event (a coordinator stopping another OPD's enrolment is
    recorded as itself), in the programme's spelling when the programme knows it."""
    programme = programmes.get(event.programme)
    known = canonical_opd(programme, event.opd_code) if programme is not None else None
    return known or event.opd_code


def internal_error(incoming: Incoming) -> Outcome:
    """The outcome of a message the validator failed on: rejected as internal_error."""
    return Outcome(incoming, rejected=_reject(incoming, [rejection(
        "", E.INTERNAL_ERROR,
        "the validator could not process this event; operations has been alerted")]))


def decision_row(outcome: Outcome) -> tuple[object, ...] | None:
    """The registry.decisions row of a first decision (None for a message that is not an
    event of a NIK, or an event decided before)."""
    incoming = outcome.incoming
    event = incoming.event
    if event is None or incoming.nik is None or outcome.state is None:
        return None
    record = outcome.state.events.get(str(event.event_id))
    if record is not None and record.outcome == "accepted":
        result = "partially_accepted" if outcome.rejected is not None else "accepted"
    else:
        result = "rejected"
    periods = sorted({c.period for s in outcome.schedules for c in s.contributions})
    errors = outcome.rejected.errors if outcome.rejected is not None else []
    return (
        event.event_id, event.event_type, incoming.nik, event.programme,
        outcome.opd_code or event.opd_code,
        result, periods,
        _json(errors), _json(outcome.warnings),
        [s.schedule_id for s in outcome.schedules],
        outcome.rejected.rejection_id if outcome.rejected is not None else None,
        incoming.source.topic, incoming.source.partition, incoming.source.offset,
    )


def _json(items: list[RejectionError]) -> str:
    return json.dumps([item.model_dump() for item in items]) if items else "[]"


def correction_row(outcome: Outcome) -> tuple[object, ...] | None:
    """The registry.corrections row of an accepted correction, first decided (None else):
    the values as corrected, the place names in the programme's spelling."""
    event = outcome.incoming.event
    if (not isinstance(event, WorkerCorrected) or outcome.state is None
            or outcome.rejected is not None or outcome.nik is None):
        return None
    return (event.event_id, outcome.nik, event.programme, outcome.opd_code or event.opd_code,
            event.corrected.model_dump_json(exclude_none=True), event.reason,
            event.occurred_at)
