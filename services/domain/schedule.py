"""The contribution schedule: which months a registration pays, when and how much."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from uuid import UUID, uuid5

from schemas.events import (
    Components,
    ContributionDue,
    ContributionSchedule,
    RejectionError,
    WorkerDeregistered,
    WorkerRegistered,
)
from services.domain.periods import due_date, period_index, period_range
from services.domain.programme import Programme

# Namespace of every iuran id derived with UUIDv5 (fixed forever: ids are part of the ledger).
IURAN_NAMESPACE = UUID("6b1c3f0e-5a43-4f7b-9a43-2f1d7e5c9b10")


def derived_id(*parts: str) -> UUID:
    """UUIDv5 (RFC 4122) of the parts joined by ':' in the iuran namespace."""
    return uuid5(IURAN_NAMESPACE, ":".join(parts))


def contribution_id(programme: str, nik: str, period: str, generation: int = 0) -> UUID:
    """The id of one worker-month in one programme. Generation 0 (the first time the month
    is paid) keeps the id of programme, NIK and period; a month paid again after a
    deregistration (generation 1, 2, ...) gets an id of its own, so the ledger books it."""
    if generation == 0:
        return derived_id("contribution", programme, nik, period)
    return derived_id("contribution", programme, nik, period, f"g{generation}")


@dataclass(frozen=True, slots=True)
class _Terms:
    """What every contribution of a programme shares, and its months' due dates."""

    components: Components  # of the first rate (the only one of most programmes)
    amount_idr: int
    due_dates: dict[str, date]
    covered: dict[tuple[str, int], tuple[str, ...]]  # (start, months) → covered periods
    dues: dict[str, ContributionDue]  # period → its contribution, id and generation to fill


_TERMS: dict[int, tuple[Programme, _Terms]] = {}


def _terms(programme: Programme) -> _Terms:
    """The terms of a programme, built on first use (a loaded programme never changes)."""
    cached = _TERMS.get(id(programme))
    if cached is not None and cached[0] is programme:
        return cached[1]
    premium = programme.premium
    terms = _Terms(Components.model_construct(jkk=premium.jkk_idr, jkm=premium.jkm_flat_idr),
                   premium.jkk_idr + premium.jkm_flat_idr, {}, {}, {})
    _TERMS[id(programme)] = (programme, terms)
    return terms


def covered_periods(programme: Programme, start: str, months: int) -> list[str]:
    """The months a registration starting at ``start`` pays, clipped to the programme's end."""
    covered = _terms(programme).covered
    found = covered.get((start, months))
    if found is None:
        last = period_index(programme.last_period)
        found = tuple(p for p in period_range(start, months) if period_index(p) <= last)
        if len(covered) < _MAX_TEMPLATES:
            covered[(start, months)] = found
    return list(found)


_MAX_TEMPLATES = 4096  # (start, months) pairs kept per programme; far more than ever occur


def _due_date(programme: Programme, terms: _Terms, period: str) -> date:
    due = terms.due_dates.get(period)
    if due is None:
        due = due_date(period, programme.premium_for(period).due_day, programme.holidays)
        if len(terms.due_dates) < _MAX_TEMPLATES:
            terms.due_dates[period] = due
    return due


def _template(programme: Programme, terms: _Terms, period: str) -> ContributionDue:
    """The contribution of ``period`` in a programme, every field set: each worker's is a
    copy with its id and generation (``model_copy`` is about twice as fast as
    ``model_construct``, and this runs once per contribution)."""
    template = terms.dues.get(period)
    if template is None:
        components, amount = (_rate(programme, period) if programme.premium_changes
                              else (terms.components, terms.amount_idr))  # one rate throughout
        template = ContributionDue.model_construct(
            contribution_id=IURAN_NAMESPACE, period=period,
            due_date=_due_date(programme, terms, period), amount_idr=amount,
            components=components, generation=0)
        if len(terms.dues) < _MAX_TEMPLATES:
            terms.dues[period] = template
    return template


def contributions_for(
    programme: Programme, nik: str, periods: list[str],
    generations: Mapping[str, int] | None = None,
) -> list[ContributionDue]:
    """One ContributionDue per period, of the generation given for it (default 0). Built
    without re-validation: every value comes from the programme configuration and an
    already validated event (this runs per registration)."""
    terms = _terms(programme)
    generations = generations or {}
    found = []
    for period in periods:
        generation = generations.get(period, 0)
        found.append(_template(programme, terms, period).model_copy(update={
            "contribution_id": contribution_id(programme.id, nik, period, generation),
            "generation": generation}))
    return found


def _rate(programme: Programme, period: str) -> tuple[Components, int]:
    """The components and amount of a month: the premium in effect in it."""
    premium = programme.premium_for(period)
    return (Components.model_construct(jkk=premium.jkk_idr, jkm=premium.jkm_flat_idr),
            premium.monthly_idr)


def due_schedule(
    programme: Programme, event: WorkerRegistered, periods: list[str],
    generations: Mapping[str, int] | None = None,
    warnings: list[RejectionError] | None = None,
    *, opd_code: str | None = None, kecamatan: str | None = None,
) -> ContributionSchedule:
    """The schedule of an accepted registration; ``opd_code`` and ``kecamatan`` are the
    programme's spellings when they differ from the event's (default: the event's)."""
    worker = event.worker
    return ContributionSchedule.model_construct(
        schedule_id=derived_id("schedule", "due", str(event.event_id)),
        kind="due",
        nik=worker.nik,
        programme=programme.id,
        opd_code=opd_code or event.opd_code,
        category=worker.category,
        kecamatan=kecamatan or worker.kecamatan,
        funding_source=programme.funding_source,
        registration_event_id=event.event_id,
        occurred_at=event.occurred_at,
        contributions=contributions_for(programme, worker.nik, periods, generations),
        warnings=warnings or [],
    )


def cancelled_schedule(
    programme: Programme,
    event: WorkerDeregistered,
    accepted: ContributionSchedule,
    periods: list[str],
    generations: Mapping[str, int] | None = None,
) -> ContributionSchedule:
    """The months of ``accepted`` (a schedule the validator accepted) from which the worker
    is no longer paid, with the ids of the generation ``accepted`` booked them in."""
    return ContributionSchedule(
        schedule_id=derived_id("schedule", "cancelled", str(event.event_id)),
        kind="cancelled",
        nik=event.nik,
        programme=programme.id,
        opd_code=accepted.opd_code,
        category=accepted.category,
        kecamatan=accepted.kecamatan,
        funding_source=accepted.funding_source,
        registration_event_id=event.event_id,
        occurred_at=event.occurred_at,
        contributions=contributions_for(programme, event.nik, periods, generations),
    )
