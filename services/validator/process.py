"""Turn one raw registration message into what the validator must send.

Kept apart from Faust: decode → look up the worker's state → call the domain → outputs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from schemas.events import (
    ContributionSchedule,
    RejectedEvent,
    RejectionError,
    WorkerRegistered,
)
from services.domain.enrolment import NikState, decide, empty_state
from services.domain.errors import rejection
from services.domain.programme import Programme
from services.validator.decode import MAX_MESSAGE_BYTES, decode_registration


@dataclass
class Outcome:
    nik: str | None = None
    schedules: list[ContributionSchedule] = field(default_factory=list)
    rejected: RejectedEvent | None = None
    state: NikState | None = None
    duplicate_event: bool = False
    programme: str = "unknown"  # a metrics label: only configured programme ids
    event_type: str = "unknown"


@dataclass(frozen=True)
class Source:
    topic: str
    partition: int
    offset: int


def _rejection(
    value: bytes, source: Source, errors: list[RejectionError], **ids: str | None
) -> RejectedEvent:
    return RejectedEvent(
        original=value[: 2 * MAX_MESSAGE_BYTES].decode("utf-8", errors="replace"),
        source_topic=source.topic,
        partition=source.partition,
        offset=source.offset,
        rejected_at=datetime.now(UTC),
        errors=errors,
        **ids,
    )


def process_registration(
    key: bytes | None,
    value: bytes | None,
    source: Source,
    programmes: Mapping[str, Programme],
    load_state: Callable[[str], NikState | None],
) -> Outcome:
    """Decide what one message produces. ``load_state(nik)`` returns the NIK's table state."""
    event, problems = decode_registration(value)
    if event is None:
        return Outcome(rejected=_rejection(value or b"", source, problems))
    ids = {"event_id": str(event.event_id), "opd_code": event.opd_code,
           "programme": event.programme}
    nik = event.worker.nik if isinstance(event, WorkerRegistered) else event.nik
    if key is None or key != nik.encode():
        return Outcome(rejected=_rejection(value or b"", source, [rejection(
            "key", "key_mismatch",
            "the message key must be the worker's NIK (it decides the partition)")], **ids))
    state = load_state(nik) or empty_state()
    # Decisions depend on the event alone (never on the clock), so a replay decides the same.
    decision = decide(state, event, programmes, event.occurred_at.astimezone(UTC).date())
    outcome = Outcome(
        nik=nik,
        schedules=decision.schedules,
        state=decision.state,
        duplicate_event=decision.duplicate_event,
        programme=event.programme if event.programme in programmes else "unknown",
        event_type=event.event_type,
    )
    if decision.errors:
        outcome.rejected = _rejection(value or b"", source, decision.errors, **ids)
    return outcome
