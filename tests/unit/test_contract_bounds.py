"""The v1 contract refuses at the edge what the ledger's tables would refuse later: amounts
out of BIGINT or not positive, components that do not add up to the amount, a schedule's
NIK that is not 16 digits, a NUL character in text, a reference longer than 100."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError

from schemas.events import INT64_MAX, ContributionSchedule, PaymentConfirmed
from services.domain.programme import load_programmes
from services.runtime.settings import Settings
from tests.support.ledger import schedule, worker_nik


def _schedule() -> dict[str, Any]:
    programme = load_programmes(Settings().programmes_dir)["malang-2025"]
    return json.loads(schedule(programme, worker_nik(1), ["2026-01"]).model_dump_json())


def _payment() -> dict[str, Any]:
    return {"payment_id": "6b1c3f0e-5a43-4f7b-9a43-2f1d7e5c9b10", "programme": "malang-2025",
            "period": "2025-12", "amount_idr": 16_800, "reference": "BPJS-1",
            "paid_at": "2025-12-10T10:00:00+07:00"}


def _due(body: dict[str, Any], amount: int, jkk: int, jkm: int) -> dict[str, Any]:
    body["contributions"][0].update(amount_idr=amount, components={"jkk": jkk, "jkm": jkm})
    return body


def test_a_valid_schedule_and_payment_decode() -> None:
    ContributionSchedule.model_validate_json(json.dumps(_schedule()))
    PaymentConfirmed.model_validate_json(json.dumps(_payment()))
    big = _due(_schedule(), INT64_MAX, INT64_MAX, 0)
    assert ContributionSchedule.model_validate(big).contributions[0].amount_idr == INT64_MAX


@pytest.mark.parametrize("change", [
    lambda b: _due(b, 10**20, 10**20, 0),
    lambda b: _due(b, INT64_MAX + 1, INT64_MAX, 1),
    lambda b: _due(b, 0, 0, 0),
    lambda b: _due(b, -5, 0, 0),
    lambda b: _due(b, 16_800, 10_000, 1_000),  # components do not add up
    lambda b: _due(b, 16_800, INT64_MAX, 0),
    lambda b: {**b, "nik": "357301450790000"},
    lambda b: {**b, "nik": "35730145079000a1"},
    lambda b: {**b, "nik": "３５７３０１４５０７９００００１"},
    lambda b: {**b, "opd_code": "DISNA\x00KER"},
    lambda b: {**b, "kecamatan": "\x00"},
    lambda b: {**b, "funding_source": "apbd\x00"},
    lambda b: {**b, "programme": "malang\x00-2025"},
])
def test_schedules_beyond_the_tables_bounds_are_refused(change: Any) -> None:
    with pytest.raises(ValidationError):
        ContributionSchedule.model_validate_json(json.dumps(change(_schedule())))


@pytest.mark.parametrize("change", [
    {"amount_idr": 10**20}, {"amount_idr": INT64_MAX + 1}, {"amount_idr": 0},
    {"amount_idr": -1}, {"reference": "R" * 101}, {"reference": "BPJS\x00-1"},
    {"programme": "malang-2025\x00"},
])
def test_payments_beyond_the_tables_bounds_are_refused(change: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        PaymentConfirmed.model_validate_json(json.dumps({**_payment(), **change}))


@pytest.mark.parametrize("nik", ["\x00", "3573014507900001\x00", "9" * 65])
@pytest.mark.parametrize("event_type", ["registered", "deregistered"])
def test_a_registration_nik_the_registry_cannot_store_is_rejected_at_decoding(
    nik: str, event_type: str
) -> None:
    from services.validator.decode import decode_registration

    body: dict[str, Any] = {
        "event_id": "6b1c3f0e-5a43-4f7b-9a43-2f1d7e5c9b10", "event_type": event_type,
        "occurred_at": "2025-11-25T09:30:00+07:00", "opd_code": "DISNAKER",
        "programme": "malang-2025"}
    if event_type == "registered":
        body |= {"worker": {"nik": nik, "full_name": "Siti", "birth_date": "1990-07-05",
                            "sex": "F", "category": "umkm", "kecamatan": "Blimbing",
                            "kelurahan": "Arjosari"}, "coverage_start": "2025-12"}
    else:
        body |= {"nik": nik, "effective_period": "2026-01", "reason": "pindah"}
    event, errors = decode_registration(json.dumps(body).encode())
    assert event is None
    field = "worker.nik" if event_type == "registered" else "nik"
    assert [(e.field, e.code) for e in errors] == [(field, "invalid_nik")]
