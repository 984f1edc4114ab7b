"""Coverage from what the ledger holds: tallies per programme and group, the month series,
and the city's coverage ratio without counting any worker twice.

The ledger sums its outcomes (booked, held awaiting budget; cancelled and refused months
are in neither) per group in the transaction that books them; these functions turn those
tallies into the figures people read. Coverage at a month is

    (baseline + distinct workers with a booked month there, across every programme)
    / workforce

where the baseline counts the members no programme run by iuran pays. One active payer per
worker-month across programmes makes "distinct workers booked in a month" the sum of the
programmes' booked months of that month: a worker paid by the province and the city in
different months counts once in each month, never twice.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import datetime

from schemas.events import CoverageMonth, CoverageSnapshot, CoverageTotals
from services.domain.programme import Programme


@dataclass(frozen=True, slots=True)
class Tally:
    """What the ledger holds for one group (a programme, an OPD, a category, a kecamatan)."""

    active_workers: int = 0  # distinct workers with at least one booked month
    contributions_booked: int = 0
    booked_idr: int = 0
    awaiting_budget_workers: int = 0  # distinct workers with a month held for budget
    awaiting_budget_contributions: int = 0
    awaiting_budget_idr: int = 0
    verified_workers: int = 0  # active workers BPJS verified (covered)
    awaiting_bpjs_workers: int = 0  # active workers BPJS gave no verdict on yet


@dataclass(frozen=True, slots=True)
class MonthTally:
    """One programme's month: booked months (= distinct workers covered) and held ones."""

    programme: str
    period: str
    covered_workers: int
    booked_idr: int
    awaiting_budget_contributions: int = 0
    awaiting_budget_idr: int = 0


@dataclass(frozen=True)
class LedgerCoverage:
    """Everything the coverage figures are computed from, read in one snapshot."""

    marker: int  # grows with every change; equal markers mean equal figures
    totals: dict[str, Tally] = field(default_factory=dict)
    # programme -> dimension ("by_opd", "by_category", "by_kecamatan") -> key -> tally
    groups: dict[str, dict[str, dict[str, Tally]]] = field(default_factory=dict)
    months: tuple[MonthTally, ...] = ()
    paid: dict[str, int] = field(default_factory=dict)  # programme -> rupiah paid to BPJS


DIMENSIONS = ("by_opd", "by_category", "by_kecamatan")


def covered_by_month(months: Iterable[MonthTally]) -> dict[str, int]:
    """Distinct workers with a booked month, per month, across every programme."""
    result: dict[str, int] = {}
    for month in months:
        result[month.period] = result.get(month.period, 0) + month.covered_workers
    return dict(sorted(result.items()))


def coverage_ratio(baseline: int, covered: int, workforce: int) -> float:
    """(members no iuran programme pays + workers an iuran programme covers) / workforce."""
    if workforce <= 0:
        return 0.0
    return (baseline + covered) / workforce


def workers_to_reach(ratio: float, baseline: int, covered: int, workforce: int) -> int:
    """How many more covered workers the ratio needs (0 when it is reached)."""
    needed = -(-int(round(ratio * workforce * 1_000_000)) // 1_000_000)  # ceil, no float drift
    return max(needed - baseline - covered, 0)


def yearly_cost(active_workers: int, monthly_premium_idr: int, months: int = 12) -> int:
    """What keeping today's active workers covered for a fiscal year costs, in rupiah."""
    return active_workers * monthly_premium_idr * months


def workers_coverable(budget_idr: int, monthly_premium_idr: int, months: int = 12) -> int:
    """How many workers a budget covers for ``months`` months."""
    if monthly_premium_idr <= 0 or months <= 0:
        return 0
    return budget_idr // (monthly_premium_idr * months)


def snapshot(programme: Programme, ledger: LedgerCoverage, as_of: datetime) -> CoverageSnapshot:
    """The coverage snapshot of one programme: its own tallies, and the city's coverage at
    the programme's headline month from every programme's booked months."""
    cover = programme.coverage
    baseline, workforce = cover.baseline_members, cover.workforce
    total = ledger.totals.get(programme.id, Tally())
    everyone = covered_by_month(ledger.months)
    covered = everyone.get(cover.headline_period, 0)
    by = ledger.groups.get(programme.id, {})
    months = [
        CoverageMonth(
            period=m.period, covered_workers=m.covered_workers, booked_idr=m.booked_idr,
            covered_all_programmes=everyone.get(m.period, 0),
            coverage_ratio=round(coverage_ratio(baseline, everyone.get(m.period, 0),
                                                workforce), 6),
            awaiting_budget_contributions=m.awaiting_budget_contributions,
            awaiting_budget_idr=m.awaiting_budget_idr)
        for m in ledger.months if m.programme == programme.id
    ]
    return CoverageSnapshot(
        as_of=as_of,
        programme=programme.id,
        **asdict(total),
        paid_idr=ledger.paid.get(programme.id, 0),
        registered_outside_programme=baseline,
        workforce=workforce,
        headline_period=cover.headline_period,
        covered_in_headline_period=covered,
        members=baseline + covered,
        coverage_ratio=round(coverage_ratio(baseline, covered, workforce), 6),
        target_ratio=cover.target_ratio,
        goal_ratio=cover.goal_ratio,
        goal_year=cover.goal_year,
        workers_to_target=workers_to_reach(cover.target_ratio, baseline, covered, workforce),
        workers_to_goal=workers_to_reach(cover.goal_ratio, baseline, covered, workforce),
        next_year_cost_idr=yearly_cost(total.active_workers, programme.premium.monthly_idr),
        months=months,
        by_opd=_totals(by.get("by_opd", {})),
        by_category=_totals(by.get("by_category", {})),
        by_kecamatan=_totals(by.get("by_kecamatan", {})),
    )


def _totals(group: dict[str, Tally]) -> dict[str, CoverageTotals]:
    return {key: CoverageTotals(**asdict(tally)) for key, tally in group.items()}


def snapshots(programmes: dict[str, Programme], ledger: LedgerCoverage,
              as_of: datetime) -> list[CoverageSnapshot]:
    """One snapshot per configured programme, by id."""
    return [snapshot(programmes[pid], ledger, as_of) for pid in sorted(programmes)]
