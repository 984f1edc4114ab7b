"""Turn one raw registration message into what the validator must send.

Kept apart from Faust: decode → look up the programme → call the domain → outputs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from pydantic import ValidationError

from schemas.events import (
    ContributionSchedule,
    RejectedEvent,
    RejectionError,
    WorkerRegistered,
    parse_registration,
)
from services.domain.errors import rejections_from_validation_error
from services.domain.programme import Programme
from services.domain.registration import (
    NikState,
    decide_deregistration,
    decide_registration,
    empty_state,
    error,
)

MAX_MESSAGE_BYTES = 64 * 1024


@dataclass
class Outcome:
    nik: str | None = None
    schedules: list[ContributionSchedule] = field(default_factory=list)
    rejected: RejectedEvent | None = None
    state: NikState | None = None
    duplicate_event: bool = False
    programme: str | None = None
    event_type: str | None = None


@dataclass(frozen=True)
class Source:
    topic: str
    partition: int
    offset: int


def _rejection(
    value: bytes, source: Source, errors: list[RejectionError], **ids: str | None
) -> RejectedEvent:
    return RejectedEvent(
        original=value.decode("utf-8", errors="replace"),
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
    load_state: callable,  # type: ignore[valid-type]
) -> Outcome:
    """Decide what one message produces. ``load_state(nik)`` returns the NIK's table state."""
    raw = value or b""
    if len(raw) > MAX_MESSAGE_BYTES:
        return Outcome(rejected=_rejection(raw[:2048], source, [error(
            "", "message_too_large",
            f"message is {len(raw)} bytes; the limit is {MAX_MESSAGE_BYTES} bytes")]))
    try:
        event = parse_registration(raw)
    except ValidationError as exc:
        return Outcome(rejected=_rejection(raw, source, rejections_from_validation_error(exc)))
    except (UnicodeDecodeError, ValueError):
        return Outcome(rejected=_rejection(raw, source, [error(
            "", "malformed_json", "message is not UTF-8 JSON")]))
    ids = {"event_id": str(event.event_id), "opd_code": event.opd_code,
           "programme": event.programme}
    nik = event.worker.nik if isinstance(event, WorkerRegistered) else event.nik
    if key is None or key != nik.encode():
        return Outcome(rejected=_rejection(raw, source, [error(
            "key", "key_mismatch",
            "the message key must be the worker's NIK (it decides the partition)")], **ids))
    programme = programmes.get(event.programme)
    if programme is None:
        return Outcome(rejected=_rejection(raw, source, [error(
            "programme", "unknown_programme",
            f"programme {event.programme!r} is not configured")], **ids))
    state = load_state(nik) or empty_state()
    today: date = event.occurred_at.astimezone(UTC).date()
    if isinstance(event, WorkerRegistered):
        decision = decide_registration(state, event, programme, today)
    else:
        decision = decide_deregistration(state, event, programme, today)
    outcome = Outcome(
        nik=nik,
        schedules=decision.schedules,
        state=decision.state,
        duplicate_event=decision.duplicate_event,
        programme=programme.id,
        event_type=event.event_type,
    )
    if decision.errors:
        outcome.rejected = _rejection(raw, source, decision.errors, **ids)
    return outcome
