"""The schedule built on the hot path is the one the contract defines: the same ids (UUIDv5
of every generation) and, byte for byte, the same JSON as models built the slow way."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from schemas.events import Components, ContributionDue, ContributionSchedule
from services.domain.enrolment import decide, empty_state, read_state
from services.domain.periods import due_date
from services.domain.programme import DatedPremium, Programme, load_programmes
from services.domain.schedule import IURAN_NAMESPACE, contributions_for, covered_periods
from tests.support.workers import registration

PROGRAMMES = load_programmes(Path(__file__).resolve().parents[2] / "deploy" / "programmes")
MALANG = PROGRAMMES["malang-2025"]


def test_contributions_match_validated_models_byte_for_byte() -> None:
    event = registration(coverage_start="2026-03")
    nik = event.worker.nik
    periods = covered_periods(MALANG, "2026-03", 12)
    generations = {periods[0]: 1, periods[2]: 3}
    built = contributions_for(MALANG, nik, periods, generations)
    premium = MALANG.premium
    for due, period in zip(built, periods, strict=True):
        generation = generations.get(period, 0)
        name = f"contribution:malang-2025:{nik}:{period}" + (f":g{generation}" if generation
                                                             else "")
        reference = ContributionDue(
            contribution_id=uuid.uuid5(IURAN_NAMESPACE, name), period=period,
            due_date=due_date(period, premium.due_day, MALANG.holidays),
            amount_idr=premium.jkk_idr + premium.jkm_flat_idr,
            components=Components(jkk=premium.jkk_idr, jkm=premium.jkm_flat_idr),
            generation=generation)
        assert due == reference
        assert due.model_dump_json() == reference.model_dump_json()
        assert due.model_fields_set == reference.model_fields_set


def test_a_decided_schedule_survives_validation_unchanged() -> None:
    event = registration(opd_code="dishub")
    decision = decide(empty_state(), event, PROGRAMMES, event.occurred_at.date())
    (schedule,) = decision.schedules
    raw = schedule.model_dump_json()
    assert ContributionSchedule.model_validate_json(raw).model_dump_json() == raw
    assert schedule.opd_code == "DISHUB"
    state = decision.state
    assert state is not None
    assert read_state(state.model_dump_json(), 2) == read_state(state.model_dump(), 2)


def test_a_month_is_charged_the_premium_in_effect_in_it() -> None:
    changed = MALANG.model_copy(update={"premium_changes": [
        DatedPremium(declared_income_idr=1_000_000, jkk_rate_basis_points=100,
                     jkm_flat_idr=7_800, effective_from="2026-04")]})
    months = ["2026-02", "2026-03", "2026-04", "2026-05"]
    found = contributions_for(changed, "3573014507900001", months)
    assert [c.amount_idr for c in found] == [16_800, 16_800, 17_800, 17_800]
    assert [c.components.jkm for c in found] == [6_800, 6_800, 7_800, 7_800]
    assert changed.premium_for("2026-03") is changed.premium
    # the same ids as without the change: a month is one contribution whatever it costs
    assert [c.contribution_id for c in found] == [
        c.contribution_id for c in contributions_for(MALANG, "3573014507900001", months)]
    with pytest.raises(ValueError, match="premium_changes"):
        Programme.model_validate({**changed.model_dump(), "premium_changes": [
            {**changed.premium_changes[0].model_dump(), "effective_from": "2025-08"}]})
