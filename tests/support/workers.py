"""Registration events with NIKs no other test uses."""

from __future__ import annotations

import random
import uuid
from datetime import date, datetime, timedelta
from pathlib import Path

from schemas.events import (
    AnyRegistration,
    WorkerCorrected,
    WorkerCorrection,
    WorkerDeregistered,
    WorkerRegistered,
)
from services.domain.nik import REGIONS, encode_nik, nik_of, parse_nik
from services.domain.programme import load_programme

# Kota Malang's business time zone, as its programme declares it.
WIB = load_programme(Path(__file__).parents[2] / "deploy" / "programmes" / "malang-2025.toml").zone
_rng = random.Random(uuid.uuid4().int)  # noqa: S311 - unique test data, not security
# Every (regency/city, kecamatan) of the Kemendagri code list, e.g. ("3573", "01").
_PLACES = sorted((regency, district) for regency, districts in REGIONS.items()
                 for district in districts)


def unique_nik(sex: str = "M", born: date | None = None) -> str:
    """A valid NIK from a random real kecamatan code so tests do not collide (a worker of
    the city may hold a NIK issued anywhere)."""
    born = born or date(1970, 1, 1) + timedelta(days=_rng.randrange(0, 365 * 35))
    regency, district = _rng.choice(_PLACES)
    return encode_nik(regency[:2], regency[2:], district, born, sex, _rng.randrange(1, 9999))


def registration(
    *,
    nik: str | None = None,
    opd_code: str = "DISNAKER",
    programme: str = "malang-2025",
    coverage_start: str = "2025-12",
    months: int = 12,
    sex: str = "M",
    born: date | None = None,
    event_id: uuid.UUID | None = None,
) -> WorkerRegistered:
    nik = nik or unique_nik(sex, born)
    decoded = parse_nik(nik, reference=date(2025, 11, 25))
    born, sex = decoded.birth_date, decoded.sex
    return WorkerRegistered(
        event_id=event_id or uuid.uuid4(),
        event_type="registered",
        occurred_at=datetime(2025, 11, 25, 9, 0, tzinfo=WIB),
        opd_code=opd_code,
        programme=programme,
        worker={  # type: ignore[arg-type]
            "nik": nik, "full_name": "Siti Rahayu" if sex == "F" else "Budi Santoso",
            "birth_date": born, "sex": sex, "category": "ojek_online",
            "kecamatan": "Klojen", "kelurahan": "Kauman", "phone": "0812-3456-7890",
        },
        coverage_start=coverage_start,
        months=months,
    )


def deregistration(nik: str, effective_period: str, *, opd_code: str = "DISNAKER",
                   programme: str = "malang-2025") -> WorkerDeregistered:
    """Sent an hour after :func:`registration`'s events, before any month they cover."""
    return WorkerDeregistered(
        event_id=uuid.uuid4(), event_type="deregistered",
        occurred_at=datetime(2025, 11, 25, 10, 0, tzinfo=WIB), opd_code=opd_code,
        programme=programme, nik=nik, effective_period=effective_period,
        reason="formal employment",
    )


def correction(nik: str, *, opd_code: str = "DISNAKER", programme: str = "malang-2025",
               **corrected: object) -> WorkerCorrected:
    """A correction of the worker's fields, sent two hours after :func:`registration`'s
    events."""
    return WorkerCorrected(
        event_id=uuid.uuid4(), event_type="corrected",
        occurred_at=datetime(2025, 11, 25, 11, 0, tzinfo=WIB), opd_code=opd_code,
        programme=programme, nik=nik, corrected=WorkerCorrection.model_validate(corrected),
        reason="the KTP shows otherwise",
    )


def as_message(event: AnyRegistration) -> tuple[bytes, bytes]:
    return nik_of(event).encode(), event.model_dump_json().encode()
