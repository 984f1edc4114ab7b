"""The demo batch: valid registrations that the programme's rules accept."""

from __future__ import annotations

from collections import Counter
from datetime import date

from services.demo.workers import demo_registrations
from services.domain.programme import load_programme
from services.domain.rules import check_registration
from services.runtime.settings import REPO_ROOT

PROGRAMME = load_programme(REPO_ROOT / "deploy" / "programmes" / "malang-2025.toml")


def test_demo_registrations_are_valid_unique_and_deterministic() -> None:
    events = list(demo_registrations(PROGRAMME, 2000))
    assert [check_registration(e, PROGRAMME, date(2025, 11, 25)) for e in events] == [[]] * 2000
    assert len({e.worker.nik for e in events}) == 2000
    assert [e.event_id for e in demo_registrations(PROGRAMME, 50)] == [
        e.event_id for e in events[:50]]
    assert set(Counter(e.worker.kecamatan for e in events)) == set(PROGRAMME.kecamatan)
    assert len(Counter(e.worker.category for e in events)) == 7
