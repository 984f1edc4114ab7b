"""The contribution schedule: which months a registration pays, when and how much."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any
from uuid import UUID

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
_NAMESPACE_BYTES = IURAN_NAMESPACE.bytes
# RFC 4122 version 5 and variant bits, as masks over the 128-bit integer of a digest
_V5_CLEAR = ~((0xF000 << 64) | (0xC000 << 48))
_V5_SET = (0x5000 << 64) | (0x8000 << 48)


def _v5(digest: hashlib._Hash) -> UUID:
    """The UUIDv5 of a SHA-1 over the namespace and name (RFC 4122, section 4.3)."""
    return UUID(int=(int.from_bytes(digest.digest()[:16]) & _V5_CLEAR) | _V5_SET)


def derived_id(*parts: str) -> UUID:
    """UUIDv5 (RFC 4122) of the parts joined by ':' in the iuran namespace.

    Same result as ``uuid.uuid5(IURAN_NAMESPACE, ':'.join(parts))``, built directly from the
    SHA-1 digest because it runs once per contribution on the hot path.
    """
    return _v5(hashlib.sha1(_NAMESPACE_BYTES + ":".join(parts).encode()))  # noqa: S324 - RFC 4122 v5


def contribution_id(programme: str, nik: str, period: str, generation: int = 0) -> UUID:
    """The id of one worker-month in one programme. Generation 0 (the first time the month
    is paid) keeps the id of programme, NIK and period; a month paid again after a
    deregistration (generation 1, 2, ...) gets an id of its own, so the ledger books it."""
    if generation == 0:
        return derived_id("contribution", programme, nik, period)
    return derived_id("contribution", programme, nik, period, f"g{generation}")


def _contribution_ids(programme: str, nik: str, periods: list[str],
                      generations: Mapping[str, int]) -> list[UUID]:
    """:func:`contribution_id` of each period, the digest of the shared prefix computed once."""
    prefix = hashlib.sha1(  # noqa: S324 - RFC 4122 v5
        _NAMESPACE_BYTES + f"contribution:{programme}:{nik}:".encode())
    found = []
    for period in periods:
        generation = generations.get(period, 0)
        digest = prefix.copy()
        digest.update(period.encode() if generation == 0 else f"{period}:g{generation}".encode())
        found.append(_v5(digest))
    return found


@dataclass(frozen=True, slots=True)
class _Terms:
    """What every contribution of a programme shares, and its months' due dates."""

    components: Components  # of the first rate (the only one of most programmes)
    amount_idr: int
    due_dates: dict[str, date]
    covered: dict[tuple[str, int], tuple[str, ...]]  # (start, months) → covered periods


_TERMS: dict[int, tuple[Programme, _Terms]] = {}


def _terms(programme: Programme) -> _Terms:
    """The terms of a programme, built on first use (a loaded programme never changes)."""
    cached = _TERMS.get(id(programme))
    if cached is not None and cached[0] is programme:
        return cached[1]
    premium = programme.premium
    terms = _Terms(Components.model_construct(jkk=premium.jkk_idr, jkm=premium.jkm_flat_idr),
                   premium.jkk_idr + premium.jkm_flat_idr, {}, {})
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


_DUE_FIELDS = frozenset(ContributionDue.model_fields)


def _due(values: dict[str, Any]) -> ContributionDue:
    """A ContributionDue of values known valid, as ``model_construct`` builds it (every field
    given, none extra) without its per-field bookkeeping: this runs once per contribution."""
    due = ContributionDue.__new__(ContributionDue)
    object.__setattr__(due, "__dict__", values)
    object.__setattr__(due, "__pydantic_fields_set__", set(_DUE_FIELDS))
    object.__setattr__(due, "__pydantic_extra__", None)
    object.__setattr__(due, "__pydantic_private__", None)
    return due


def contributions_for(
    programme: Programme, nik: str, periods: list[str],
    generations: Mapping[str, int] | None = None,
) -> list[ContributionDue]:
    """One ContributionDue per period, of the generation given for it (default 0). Built
    without re-validation: every value comes from the programme configuration and an
    already validated event (this runs per registration)."""
    terms = _terms(programme)
    generations = generations or {}
    ids = _contribution_ids(programme.id, nik, periods, generations)
    dated = bool(programme.premium_changes)  # else every month has the first rate
    found = []
    for period, contribution_id_ in zip(periods, ids, strict=True):
        components, amount = (_rate(programme, period) if dated
                              else (terms.components, terms.amount_idr))
        found.append(_due({
            "contribution_id": contribution_id_, "period": period,
            "due_date": _due_date(programme, terms, period), "amount_idr": amount,
            "components": components, "generation": generations.get(period, 0)}))
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
    held: ContributionSchedule,
    periods: list[str],
    generations: Mapping[str, int] | None = None,
) -> ContributionSchedule:
    """The months of ``held`` (an accepted schedule) from which the worker is no longer paid,
    with the ids of the generation ``held`` booked them in."""
    return ContributionSchedule(
        schedule_id=derived_id("schedule", "cancelled", str(event.event_id)),
        kind="cancelled",
        nik=event.nik,
        programme=programme.id,
        opd_code=held.opd_code,
        category=held.category,
        kecamatan=held.kecamatan,
        funding_source=held.funding_source,
        registration_event_id=event.event_id,
        occurred_at=event.occurred_at,
        contributions=contributions_for(programme, event.nik, periods, generations),
    )
