"""The v1 contract: models, and the checked-in JSON Schema files generated from them."""

from __future__ import annotations

import json
import uuid
from datetime import date

import pytest
from pydantic import ValidationError

from schemas.events import (
    ContributionSchedule,
    WorkerDeregistered,
    WorkerRegistered,
    parse_registration,
)
from schemas.generate import SCHEMA_DIR, render

REGISTERED = {
    "event_id": str(uuid.uuid4()),
    "event_type": "registered",
    "occurred_at": "2025-11-25T09:00:00+07:00",
    "opd_code": "DISHUB",
    "programme": "malang-2025",
    "worker": {
        "nik": "3573034507900001", "full_name": "Siti Rahayu", "birth_date": "1990-07-05",
        "sex": "F", "category": "ojek_online", "kecamatan": "Klojen", "kelurahan": "Kauman",
    },
    "coverage_start": "2025-12",
}


def test_checked_in_json_schemas_are_generated_from_the_models() -> None:
    for file_name, text in render().items():
        path = SCHEMA_DIR / file_name
        assert path.exists(), f"{file_name} missing: run `make schemas`"
        assert path.read_text(encoding="utf-8") == text, f"{file_name} is stale: `make schemas`"


def test_registration_json_schema_lists_every_event_type() -> None:
    schema = json.loads((SCHEMA_DIR / "registration.v1.schema.json").read_text())
    assert {ref.split("/")[-1] for ref in schema["discriminator"]["mapping"].values()} == {
        "WorkerRegistered", "WorkerDeregistered", "WorkerCorrected"}


def test_a_registration_decodes_with_defaults() -> None:
    event = parse_registration(json.dumps(REGISTERED))
    assert isinstance(event, WorkerRegistered)
    assert event.months == 12
    assert event.worker.birth_date == date(1990, 7, 5)
    assert event.schema_version == 1


def test_a_deregistration_decodes() -> None:
    event = parse_registration(json.dumps({
        "event_id": str(uuid.uuid4()), "event_type": "deregistered",
        "occurred_at": "2026-02-01T09:00:00Z", "opd_code": "DINSOS", "programme": "malang-2025",
        "nik": "3573034507900001", "effective_period": "2026-03", "reason": "meninggal dunia",
    }))
    assert isinstance(event, WorkerDeregistered)
    assert event.effective_period == "2026-03"


@pytest.mark.parametrize(
    ("change", "location"),
    [
        ({"occurred_at": "2025-11-25T09:00:00"}, ("registered", "occurred_at")),
        ({"months": 13}, ("registered", "months")),
        ({"coverage_start": "2025-13"}, ("registered", "coverage_start")),
        ({"schema_version": 2}, ("registered", "schema_version")),
    ],
)
def test_contract_violations_are_refused(change: dict[str, object],
                                         location: tuple[str, ...]) -> None:
    with pytest.raises(ValidationError) as caught:
        parse_registration(json.dumps({**REGISTERED, **change}))
    assert caught.value.errors()[0]["loc"] == location


def test_unknown_fields_are_tolerated_so_the_contract_can_grow() -> None:
    event = parse_registration(json.dumps({**REGISTERED, "added_in_v1_1": True}))
    assert isinstance(event, WorkerRegistered)


def test_money_is_integer_rupiah() -> None:
    with pytest.raises(ValidationError):
        ContributionSchedule.model_validate({
            "schedule_id": str(uuid.uuid4()), "kind": "due", "nik": "3573034507900001",
            "programme": "p", "opd_code": "o", "category": "umkm", "kecamatan": "Klojen",
            "funding_source": "DBHCHT", "registration_event_id": str(uuid.uuid4()),
            "contributions": [{
                "contribution_id": str(uuid.uuid4()), "period": "2025-12",
                "due_date": "2025-12-15", "amount_idr": 16800.5,
                "components": {"jkk": 10000, "jkm": 6800},
            }],
        })
