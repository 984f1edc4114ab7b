"""The validator's per-NIK state as a typed, versioned record; redeliveries re-emit identical
outputs (rejections with the same id); another message reusing a decided event id is told
so instead of replaying old, cancelled contribution ids."""

from __future__ import annotations

import json
from typing import Any

import pytest

from schemas.events import TOPIC_REGISTRATIONS
from services.domain import errors as E
from services.domain.enrolment import STATE_VERSION, WorkerState, decide, empty_state, read_state
from services.domain.errors import rejected_event, rejection
from services.validator.process import Source, decide_message, read_message
from tests.unit.test_registration_rules import (
    NIK,
    PROGRAMMES,
    TODAY,
    deregistered,
    registration_json,
)


def message(**changes: Any) -> bytes:
    return json.dumps(registration_json(**changes)).encode()


def decide_bytes(state: WorkerState, value: bytes, offset: int = 7) -> Any:
    incoming = read_message(NIK.encode(), value, Source(TOPIC_REGISTRATIONS, 1, offset))
    return decide_message(incoming, state, PROGRAMMES)


def test_a_state_round_trips_through_json_with_its_version() -> None:
    outcome = decide_bytes(empty_state(), message(months=3))
    state = outcome.state
    assert state is not None and state.version == STATE_VERSION == 2
    stored = json.loads(state.model_dump_json())
    assert read_state(stored, stored["version"]) == state
    (record,) = state.events.values()
    assert record.outcome == "accepted" and record.message == outcome.incoming.fingerprint


def test_a_state_of_an_unknown_version_is_refused() -> None:
    with pytest.raises(ValueError, match="version 3"):
        read_state({"version": 3, "enrollments": [], "events": {}}, 3)
    with pytest.raises(ValueError, match="version 1"):
        read_state('{"enrollments": [], "events": {}}', 1)
    with pytest.raises(ValueError, match="version None"):
        read_state({"enrollments": [], "events": {}})
    assert read_state(None) == empty_state()


def test_a_redelivered_rejection_is_sent_again_with_the_same_id() -> None:
    value = message(worker__kecamatan="Batu")
    first = decide_bytes(empty_state(), value)
    assert first.rejected is not None and first.state is not None
    again = decide_bytes(first.state, value)  # the same message, redelivered after a crash
    assert again.duplicate_event and again.state is None
    assert again.rejected is not None
    assert again.rejected.rejection_id == first.rejected.rejection_id
    assert again.rejected.errors == first.rejected.errors
    # not a NIK's event at all: the id comes from its position and bytes
    junk = [read_message(b"k", b"{not json", Source(TOPIC_REGISTRATIONS, 0, 3))
            for _ in range(2)]
    ids = {decide_message(j, empty_state(), PROGRAMMES).rejected.rejection_id  # type: ignore[union-attr]
           for j in junk}
    assert len(ids) == 1


def test_an_upload_sent_again_after_a_full_deregistration_is_told_so() -> None:
    """The same spreadsheet row uploaded again (same event id, a new occurred_at) must
    not replay the first schedule, whose contribution ids the ledger has cancelled,
    silently: it is rejected with a code."""
    body = registration_json()
    first = decide_bytes(empty_state(), json.dumps(body).encode())
    assert first.state is not None
    stop = decide(first.state, deregistered(effective_period="2025-12"), PROGRAMMES, TODAY)
    assert stop.state is not None and stop.schedules  # every month stopped
    sent_again = json.dumps({**body, "occurred_at": "2025-11-27T10:00:00+07:00"}).encode()
    again = decide_bytes(stop.state, sent_again, offset=99)
    assert again.schedules == [] and again.state is None
    assert again.rejected is not None
    assert [e.code for e in again.rejected.errors] == [E.EVENT_ALREADY_DECIDED]
    assert "2025-12 to 2026-11 were stopped" in again.rejected.errors[0].message
    # a redelivery of the first message still re-emits its identical schedule
    redelivered = decide_bytes(stop.state, json.dumps(body).encode())
    assert redelivered.rejected is None
    assert [s.schedule_id for s in redelivered.schedules] == [
        s.schedule_id for s in first.schedules]
    # a new registration (new event id) enrols the worker again, as generation 1
    back = decide_bytes(stop.state, message(), offset=100)
    assert back.rejected is None
    assert {c.generation for s in back.schedules for c in s.contributions} == {1}


def test_a_rejected_event_sent_again_as_a_new_message_is_told_so() -> None:
    body = registration_json(worker__kecamatan="Batu")
    first = decide_bytes(empty_state(), json.dumps(body).encode())
    assert first.state is not None
    again = decide_bytes(first.state, json.dumps(
        {**body, "occurred_at": "2025-11-27T10:00:00+07:00"}).encode())
    assert again.rejected is not None
    assert [e.code for e in again.rejected.errors] == [E.EVENT_ALREADY_DECIDED]
    assert again.rejected.rejection_id != first.rejected.rejection_id  # type: ignore[union-attr]


def test_an_event_sent_again_while_still_enrolled_changes_nothing() -> None:
    body = registration_json()
    first = decide_bytes(empty_state(), json.dumps(body).encode())
    assert first.state is not None
    again = decide_bytes(first.state, json.dumps(
        {**body, "occurred_at": "2025-11-27T10:00:00+07:00"}).encode())
    assert again.duplicate_event and again.rejected is None and again.state is None
    assert [s.schedule_id for s in again.schedules] == [s.schedule_id for s in first.schedules]


def test_the_rejection_builder_gives_a_stable_id() -> None:
    errors = [rejection("", E.MALFORMED_JSON, "not JSON")]
    one = rejected_event(b"x", "t", 0, 5, errors, event_id="e")
    two = rejected_event(b"x", "t", 0, 9, errors, event_id="e")
    other = rejected_event(b"y", "t", 0, 5, errors, event_id="e")
    assert one.rejection_id == two.rejection_id != other.rejection_id
    assert rejected_event(b"x", "t", 0, 5, errors).rejection_id != one.rejection_id
