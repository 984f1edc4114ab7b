"""The coverage formula: baseline + distinct workers any programme covers in a month, over
the workforce; nobody counted twice; the headline month; held months awaiting budget."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from services.domain.coverage import (
    LedgerCoverage,
    MonthTally,
    Tally,
    coverage_ratio,
    covered_by_month,
    snapshot,
    workers_coverable,
    workers_to_reach,
    yearly_cost,
)
from services.domain.programme import ProgrammeConfigError, load_programme, load_programmes
from services.runtime.settings import REPO_ROOT

FOLDER = REPO_ROOT / "deploy" / "programmes"
PROGRAMMES = load_programmes(FOLDER)
MALANG = PROGRAMMES["malang-2025"]
JATIM = PROGRAMMES["jatim-malang-2026"]
NOW = datetime(2025, 12, 1, tzinfo=UTC)
PREMIUM = 16_800
YEAR = ["2025-12", "2026-01", "2026-02", "2026-03", "2026-04", "2026-05",
        "2026-06", "2026-07", "2026-08", "2026-09", "2026-10", "2026-11"]


def the_25_808() -> LedgerCoverage:
    """The city's 25,808 workers booked for twelve months from 2025-12."""
    months = tuple(MonthTally("malang-2025", p, 25_808, 25_808 * PREMIUM) for p in YEAR)
    return LedgerCoverage(marker=1, totals={"malang-2025": Tally(
        active_workers=25_808, contributions_booked=25_808 * 12,
        booked_idr=25_808 * 12 * PREMIUM)}, months=months)


def test_the_programme_file_names_its_figures_and_their_sources() -> None:
    cover = MALANG.coverage
    assert (cover.baseline_members, cover.baseline_as_of) == (178_611, "2024")
    assert cover.workforce == 490_700 and cover.workforce_rough == 420_000
    assert cover.baseline_source and cover.workforce_source and cover.workforce_rough_source
    assert cover.headline_period == "2025-12"
    # the source disagrees with itself: its members over its rough workforce is not 41.66 %
    assert round(204_419 / cover.workforce_rough, 3) == 0.487
    assert round(204_419 / cover.workforce, 4) == 0.4166


def test_the_city_s_workers_booked_give_the_published_figures() -> None:
    seen = snapshot(MALANG, the_25_808(), NOW)
    assert seen.members == 204_419  # 178,611 + 25,808: the 25,808 are not counted twice
    assert seen.covered_in_headline_period == 25_808
    assert seen.coverage_ratio == pytest.approx(0.4166, abs=0.0001)
    assert seen.coverage_ratio > seen.target_ratio == 0.4123
    assert seen.workers_to_target == 0
    assert [m.period for m in seen.months] == YEAR
    assert all(m.coverage_ratio == seen.coverage_ratio for m in seen.months)


def test_a_worker_paid_by_the_province_and_the_city_in_other_months_counts_once_a_month() -> None:
    # one worker: the city pays 2025-12, the province 2026-01 (the ledger books at most one
    # payer per worker-month); another worker only the province pays, in 2026-01
    ledger = LedgerCoverage(marker=2, months=(
        MonthTally("malang-2025", "2025-12", 1, PREMIUM),
        MonthTally("jatim-malang-2026", "2026-01", 2, 2 * PREMIUM),
    ), totals={"malang-2025": Tally(1, 1, PREMIUM),
               "jatim-malang-2026": Tally(2, 2, 2 * PREMIUM)})
    assert covered_by_month(ledger.months) == {"2025-12": 1, "2026-01": 2}
    city, province = snapshot(MALANG, ledger, NOW), snapshot(JATIM, ledger, NOW)
    assert city.covered_in_headline_period == 1  # in 2025-12
    assert province.covered_in_headline_period == 2  # in 2026-01: two workers, not three
    assert province.members == 178_611 + 2


def test_months_sum_over_programmes_of_the_same_month() -> None:
    months = [MonthTally("a", "2026-01", 10, 0), MonthTally("b", "2026-01", 5, 0),
              MonthTally("a", "2026-02", 10, 0)]
    assert covered_by_month(months) == {"2026-01": 15, "2026-02": 10}


def test_held_months_await_budget_and_are_not_covered() -> None:
    ledger = LedgerCoverage(marker=3, totals={"malang-2025": Tally(
        active_workers=2, contributions_booked=24, booked_idr=24 * PREMIUM,
        awaiting_budget_workers=3, awaiting_budget_contributions=36,
        awaiting_budget_idr=36 * PREMIUM)},
        months=tuple(MonthTally("malang-2025", p, 2, 2 * PREMIUM, 3, 3 * PREMIUM)
                     for p in YEAR),
        groups={"malang-2025": {"by_opd": {"DISHUB": Tally(1, 12, 12 * PREMIUM, 3, 36,
                                                            36 * PREMIUM)},
                                "by_category": {}, "by_kecamatan": {}}})
    seen = snapshot(MALANG, ledger, NOW)
    assert (seen.active_workers, seen.covered_in_headline_period) == (2, 2)
    assert (seen.awaiting_budget_workers, seen.awaiting_budget_idr) == (3, 36 * PREMIUM)
    assert seen.by_opd["DISHUB"].awaiting_budget_workers == 3
    assert seen.months[0].awaiting_budget_idr == 3 * PREMIUM
    assert seen.members == 178_611 + 2


def test_an_empty_ledger_shows_the_baseline() -> None:
    seen = snapshot(MALANG, LedgerCoverage(marker=0), NOW)
    assert (seen.active_workers, seen.members, seen.months) == (0, 178_611, [])
    assert seen.coverage_ratio == pytest.approx(178_611 / 490_700, abs=1e-6)


def test_a_headline_month_outside_the_programme_fails_to_load(tmp_path: object) -> None:
    from pathlib import Path

    text = (FOLDER / "malang-2025.toml").read_text(encoding="utf-8")
    bad = Path(str(tmp_path)) / "bad.toml"
    bad.write_text(text.replace('headline_period = "2025-12"', 'headline_period = "2027-01"'),
                   encoding="utf-8")
    with pytest.raises(ProgrammeConfigError, match="headline_period"):
        load_programme(bad)


def test_coverage_figures_against_targets_and_budgets() -> None:
    assert round(coverage_ratio(178_611, 25_808, 490_700), 4) == 0.4166
    assert coverage_ratio(1, 1, 0) == 0.0
    assert workers_to_reach(0.4123, 178_611, 25_808, 490_700) == 0
    assert workers_to_reach(1.0, 178_611, 25_808, 490_700) == 490_700 - 204_419
    assert workers_to_reach(0.5, 0, 0, 3) == 2
    assert yearly_cost(25_808, 16_800) == 5_202_892_800
    assert workers_coverable(5_300_000_000, 16_800) == 26_289
    assert workers_coverable(0, 16_800) == 0
