"""The coverage fold: idempotent per worker, exact totals per dimension."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from schemas.events import WorkerDeregistered
from services.domain.coverage import apply_schedule, totals
from services.domain.programme import load_programme
from services.domain.schedule import cancelled_schedule, due_schedule
from services.runtime.settings import REPO_ROOT
from tests.support.workers import registration

PROGRAMME = load_programme(REPO_ROOT / "deploy" / "programmes" / "malang-2025.toml")
PERIODS = ["2025-12", "2026-01", "2026-02", "2026-03"]


def test_applying_a_schedule_twice_changes_nothing() -> None:
    schedule = due_schedule(PROGRAMME, registration(), PERIODS)
    once = apply_schedule(None, schedule)
    assert once is not None
    assert apply_schedule(once, schedule) is None
    assert totals([once])["malang-2025"]["total"] == {
        "active_workers": 1, "contributions_booked": 4, "booked_idr": 4 * 16_800}


def test_cancellation_removes_months_and_the_worker_when_none_is_left() -> None:
    event = registration()
    state = apply_schedule(None, due_schedule(PROGRAMME, event, PERIODS))
    deregistered = WorkerDeregistered(
        event_id=uuid.uuid4(), event_type="deregistered", occurred_at=datetime.now(UTC),
        opd_code="DISNAKER", programme="malang-2025", nik=event.worker.nik,
        effective_period="2026-02", reason="moved away")
    held = due_schedule(PROGRAMME, event, PERIODS)
    state = apply_schedule(state, cancelled_schedule(PROGRAMME, deregistered, held,
                                                      ["2026-02", "2026-03"]))
    assert state is not None
    assert totals([state])["malang-2025"]["total"]["contributions_booked"] == 2
    state = apply_schedule(state, cancelled_schedule(
        PROGRAMME, deregistered.model_copy(update={"event_id": uuid.uuid4()}), held,
        ["2025-12", "2026-01"]))
    assert totals([state]) == {}


def test_totals_split_by_opd_category_and_kecamatan() -> None:
    states = [
        apply_schedule(None, due_schedule(PROGRAMME, registration(opd_code=opd), PERIODS))
        for opd in ("DISHUB", "DISHUB", "DINSOS")
    ]
    folded = totals(s for s in states if s)["malang-2025"]
    assert folded["total"]["active_workers"] == 3
    assert folded["by_opd"]["DISHUB"] == {
        "active_workers": 2, "contributions_booked": 8, "booked_idr": 8 * 16_800}
    assert folded["by_opd"]["DINSOS"]["active_workers"] == 1
    assert folded["by_kecamatan"]["Klojen"]["active_workers"] == 3
