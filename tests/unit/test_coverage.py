"""The coverage fold: idempotent per worker, exact totals per dimension."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from schemas.events import WorkerDeregistered
from services.domain.coverage import (
    apply_schedule,
    coverage_ratio,
    facts_of,
    read_facts,
    totals,
    workers_coverable,
    workers_to_reach,
    yearly_cost,
)
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
    folded = totals([state])["malang-2025"]
    assert folded["total"] == {"active_workers": 0, "contributions_booked": 0, "booked_idr": 0}
    assert sum(folded["deregistrations_by_day"].values()) == 2
    assert sum(folded["registrations_by_day"].values()) == 1


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


def test_registrations_are_counted_per_day_once() -> None:
    event = registration()
    schedule = due_schedule(PROGRAMME, event, PERIODS)
    state = apply_schedule(None, schedule)
    assert apply_schedule(state, schedule) is None
    assert totals([state])["malang-2025"]["registrations_by_day"] == {"2025-11-25": 1}


def test_coverage_figures_against_targets_and_budgets() -> None:
    # 204,419 registered outside + 25,808 in the programme, of a 420,000 workforce
    assert round(coverage_ratio(204_419, 25_808, 420_000), 4) == 0.5482
    assert workers_to_reach(0.4123, 204_419, 25_808, 420_000) == 0
    assert workers_to_reach(1.0, 204_419, 25_808, 420_000) == 420_000 - 204_419 - 25_808
    assert workers_to_reach(0.5, 0, 0, 3) == 2
    assert yearly_cost(25_808, 16_800) == 5_202_892_800
    assert workers_coverable(5_300_000_000, 16_800) == 26_289
    assert workers_coverable(0, 16_800) == 0


def test_facts_read_from_the_message_equal_the_model_s() -> None:
    schedule = due_schedule(PROGRAMME, registration(), PERIODS)
    assert read_facts(schedule.model_dump_json().encode()) == facts_of(schedule)


@pytest.mark.parametrize("raw", [b"", b"{", b"[]", b'{"kind": "due"}', b'"text"',
                                 b'{"schedule_id": 1, "contributions": [{"period": 1}]}'])
def test_a_message_that_is_not_a_schedule_is_refused(raw: bytes) -> None:
    with pytest.raises(ValueError):
        read_facts(raw)
