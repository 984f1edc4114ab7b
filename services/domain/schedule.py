"""The contribution schedule: which months a registration pays, when and how much."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import date
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


def derived_id(*parts: str) -> UUID:
    """UUIDv5 (RFC 4122) of the parts joined by ':' in the iuran namespace.

    Same result as ``uuid.uuid5(IURAN_NAMESPACE, ':'.join(parts))``, built directly from the
    SHA-1 digest because it runs once per contribution on the hot path.
    """
    digest = bytearray(hashlib.sha1(_NAMESPACE_BYTES + ":".join(parts).encode()).digest()[:16])  # noqa: S324 - RFC 4122 v5
    digest[6] = (digest[6] & 0x0F) | 0x50
    digest[8] = (digest[8] & 0x3F) | 0x80
    return UUID(bytes=bytes(digest))


def contribution_id(programme: str, nik: str, period: str, generation: int = 0) -> UUID:
    """The id of one worker-month in one programme. Generation 0 (the first time the month
    is paid) keeps the id of programme, NIK and period; a month paid again after a
    deregistration (generation 1, 2, ...) gets an id of its own, so the ledger books it."""
    if generation == 0:
        return derived_id("contribution", programme, nik, period)
    return derived_id("contribution", programme, nik, period, f"g{generation}")


def covered_periods(programme: Programme, start: str, months: int) -> list[str]:
    """The months a registration starting at ``start`` pays, clipped to the programme's end."""
    last = period_index(programme.last_period)
    return [p for p in period_range(start, months) if period_index(p) <= last]


_due_dates: dict[tuple[str, str], date] = {}


def _due_date(programme: Programme, period: str) -> date:
    key = (programme.id, period)
    due = _due_dates.get(key)
    if due is None:
        due = _due_dates[key] = due_date(period, programme.premium.due_day, programme.holidays)
    return due


def contributions_for(
    programme: Programme, nik: str, periods: list[str],
    generations: Mapping[str, int] | None = None,
) -> list[ContributionDue]:
    """One ContributionDue per period, of the generation given for it (default 0). Built
    without re-validation: every value comes from the programme configuration and an
    already validated event (this runs per registration)."""
    premium = programme.premium
    jkk, jkm = premium.jkk_idr, premium.jkm_flat_idr
    components = Components.model_construct(jkk=jkk, jkm=jkm)
    generations = generations or {}
    return [
        ContributionDue.model_construct(
            contribution_id=contribution_id(programme.id, nik, period, generation),
            period=period,
            due_date=_due_date(programme, period),
            amount_idr=jkk + jkm,
            components=components,
            generation=generation,
        )
        for period in periods
        for generation in (generations.get(period, 0),)
    ]


def due_schedule(
    programme: Programme, event: WorkerRegistered, periods: list[str],
    generations: Mapping[str, int] | None = None,
    warnings: list[RejectionError] | None = None,
) -> ContributionSchedule:
    worker = event.worker
    return ContributionSchedule.model_construct(
        schedule_id=derived_id("schedule", "due", str(event.event_id)),
        kind="due",
        nik=worker.nik,
        programme=programme.id,
        opd_code=event.opd_code,
        category=worker.category,
        kecamatan=worker.kecamatan,
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
