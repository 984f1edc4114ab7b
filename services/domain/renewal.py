"""Carrying a programme's workers into the next programme year (``iuran renew``), as plain
functions: who is renewed, from which month, in which order, and at what cost.

A worker is renewed from the month after the last month the old programme covers
(``covered_through``), so the cover goes on without a gap, for as many months as the new
programme allows from there. The registration's event id derives from the worker and the new
programme: a second run publishes the same ids, and the validator decides each event once.
The order is the new programme's ``[renewal] priority`` (services.domain.programme.Renewal);
with the budget left it splits the renewed workers into those that fit and those that wait.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from uuid import UUID

from schemas.events import Category, Worker, WorkerRegistered
from services.domain.enrolment import LAPSE_MONTHS
from services.domain.periods import period_from_index, period_index
from services.domain.programme import Programme
from services.domain.schedule import covered_periods, derived_id

# Why a worker of the old programme is not renewed.
ALREADY_ENROLLED = "already_enrolled"    # the new programme already has the worker
AFTER_PROGRAMME = "after_programme"      # the cover ends after the new programme's last month
NO_DETAILS = "no_details"                # no registration with the worker's name and address
NOT_VERIFIED = "not_verified"            # the new programme renews BPJS-verified workers only


@dataclass(frozen=True)
class Candidate:
    """A worker of the old programme, as finance.cover_expiry shows them."""

    nik: str
    opd_code: str
    category: str
    kecamatan: str
    covered_through: str
    continuous_months: int  # the unbroken run of covered months that ends at covered_through


@dataclass(frozen=True)
class Renewed:
    candidate: Candidate
    event: WorkerRegistered
    periods: tuple[str, ...]
    cost_idr: int
    fits: bool  # within the budget left, in priority order
    gap_months: int  # months without cover before the renewal starts (0: none)


@dataclass
class RenewalPlan:
    source: str
    target: str
    renewed: list[Renewed] = field(default_factory=list)  # in priority order
    skipped: dict[str, list[str]] = field(default_factory=dict)  # reason -> NIKs
    room_idr: int = 0

    @property
    def fitting(self) -> list[Renewed]:
        return [r for r in self.renewed if r.fits]

    @property
    def waiting(self) -> list[Renewed]:
        return [r for r in self.renewed if not r.fits]

    def cost_idr(self, fits: bool | None = None) -> int:
        return sum(r.cost_idr for r in self.renewed if fits is None or r.fits is fits)

    def first_month_covered(self) -> tuple[str, int] | None:
        """The new programme's first month and how many renewed workers that fit it covers."""
        if not self.renewed:
            return None
        first = min(r.periods[0] for r in self.renewed)
        return first, sum(1 for r in self.fitting if first in r.periods)

    def cover_gaps(self) -> int:
        """Renewed workers whose cover lapsed before their renewal starts."""
        return sum(1 for r in self.renewed if r.gap_months >= LAPSE_MONTHS)


def cover_ends(candidates: Iterable[Candidate]) -> dict[str, int]:
    """Per month, the workers whose cover ends before it (their first month without cover):
    the months in which cover lapses without a renewal."""
    months: dict[str, int] = {}
    for candidate in candidates:
        first = period_from_index(period_index(candidate.covered_through) + 1)
        months[first] = months.get(first, 0) + 1
    return dict(sorted(months.items()))


def renewal_event_id(nik: str, target: str) -> UUID:
    """The registration that renews ``nik`` into programme ``target``: the same every run."""
    return derived_id("renewal", target, nik)


def renewal_start(covered_through: str, target: Programme) -> str | None:
    """The month after ``covered_through`` (at the earliest the target's first month);
    None when that is after the target's last month."""
    start = max(period_index(covered_through) + 1, period_index(target.first_period))
    if start > period_index(target.last_period):
        return None
    return period_from_index(start)


def continuous_months(periods: Iterable[str], through: str) -> int:
    """How many months, counted back from ``through``, are covered without a break."""
    covered = {period_index(p) for p in periods}
    index, run = period_index(through), 0
    while index in covered:
        run, index = run + 1, index - 1
    return run


def priority_key(candidate: Candidate, target: Programme) -> tuple[object, ...]:
    """The candidate's place in the target's ``[renewal] priority`` (lower first)."""
    order = target.renewal
    categories = [c.value for c in order.categories]
    key: list[object] = []
    for name in order.priority:
        if name == "category":
            key.append(categories.index(candidate.category)
                       if candidate.category in categories else len(categories))
        else:  # longest_cover
            key.append(-candidate.continuous_months)
    key.append(candidate.nik)
    return tuple(key)


def describe_priority(target: Programme) -> str:
    """The order, as a person reads it (recorded with each ranked worker)."""
    parts = ["renewals before new enrolments"]
    for name in target.renewal.priority:
        if name == "category":
            listed = ", ".join(c.value for c in target.renewal.categories) or "none listed"
            parts.append(f"category ({listed}; others after)")
        else:
            parts.append("longest continuous cover first")
    parts.append("NIK")
    return ", then ".join(parts)


def plan_renewal(
    source: Programme, target: Programme, candidates: Sequence[Candidate], *,
    enrolled: Iterable[str], details: Mapping[str, Worker], room_idr: int, now: datetime,
    verified: Iterable[str] | None = None,
) -> RenewalPlan:
    """Who is renewed into ``target``, in priority order, and who of them fits ``room_idr``.

    ``enrolled``: NIKs the target already has (by an OPD, or by an earlier run); ``details``:
    the worker record of the last registration of each NIK (name, birth date, sex, place);
    ``verified``: NIKs BPJS verified (needed when the target requires it)."""
    plan = RenewalPlan(source=source.id, target=target.id, room_idr=room_idr)
    already = set(enrolled)
    checked = set(verified) if verified is not None else None
    left = room_idr
    for candidate in sorted(candidates, key=lambda c: priority_key(c, target)):
        start = renewal_start(candidate.covered_through, target)
        reason = None
        if candidate.nik in already:
            reason = ALREADY_ENROLLED
        elif start is None:
            reason = AFTER_PROGRAMME
        elif target.renewal.requires_bpjs_verification and (
                checked is None or candidate.nik not in checked):
            reason = NOT_VERIFIED
        elif candidate.nik not in details:
            reason = NO_DETAILS
        if reason is not None or start is None:
            plan.skipped.setdefault(reason or AFTER_PROGRAMME, []).append(candidate.nik)
            continue
        worker = details[candidate.nik].model_copy(update={
            "category": Category(candidate.category), "kecamatan": candidate.kecamatan})
        periods = tuple(covered_periods(target, start, target.months))
        event = WorkerRegistered(
            event_id=renewal_event_id(candidate.nik, target.id), occurred_at=now,
            opd_code=candidate.opd_code, programme=target.id, event_type="registered",
            worker=worker, coverage_start=start, months=len(periods))
        cost = sum(target.premium_for(p).monthly_idr for p in periods)
        fits = cost <= left
        if fits:
            left -= cost
        else:
            left = 0  # who comes later waits too: the order decides, not the size
        plan.renewed.append(Renewed(candidate, event, periods, cost, fits,
                                    period_index(start) - period_index(
                                        candidate.covered_through) - 1))
    return plan
