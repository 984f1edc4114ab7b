"""Budget allocations: seeded and raised from programme configuration or by a command,
always with a recorded change; raising one books the held contributions in order."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import asyncpg

from services.domain.programme import Programme
from services.ledger import book, journal
from services.ledger.premiums import record_premium_rates

log = logging.getLogger(__name__)


class BudgetError(Exception):
    """A budget change that cannot be made (unknown allocation, lowering, bad amount)."""


@dataclass(frozen=True)
class Release:
    programme: str
    funding_source: str
    booked: int
    booked_idr: int
    duplicates: int


async def release_held(
    connection: asyncpg.Connection, programme: str, funding_source: str
) -> Release:
    """Book the held contributions of one allocation that now fit, oldest first (the rules
    of :mod:`services.ledger.model`). Idempotent: a month released is never released twice."""
    decided = await book.release(connection, (programme, funding_source))
    booked = len(decided.released)
    booked_idr = sum(m.amount_idr for m in decided.released)
    duplicates = len(decided.held_duplicates)
    if booked or duplicates:
        log.info("released %d held contributions of %s (Rp%s), %d duplicate",
                 booked, programme, f"{booked_idr:,}", duplicates)
    return Release(programme, funding_source, booked, booked_idr, duplicates)


async def _record_and_set(
    connection: asyncpg.Connection, *, programme: str, funding_source: str, fiscal_year: int,
    previous: int, allocated: int, source: str, reason: str, changed_by: str, create: bool,
) -> None:
    await connection.execute(
        """INSERT INTO ledger.budget_allocation_changes (programme, funding_source, fiscal_year,
               previous_idr, allocated_idr, source, reason, changed_by)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8)""",
        programme, funding_source, fiscal_year, previous, allocated, source, reason, changed_by,
    )
    if create:
        await connection.execute(
            """INSERT INTO ledger.budget_allocations (programme, funding_source, fiscal_year,
                   allocated_idr, booked_idr)
               SELECT $1, $2, $3, $4, coalesce(sum(c.amount_idr), 0)
                 FROM ledger.live_contributions c
                WHERE c.programme = $1 AND c.funding_source = $2""",
            programme, funding_source, fiscal_year, allocated,
        )
    else:
        await connection.execute(
            """UPDATE ledger.budget_allocations SET allocated_idr = $3
                WHERE programme = $1 AND funding_source = $2""",
            programme, funding_source, allocated,
        )


async def ensure_allocation(
    connection: asyncpg.Connection, programme: Programme, *, changed_by: str = "ledger"
) -> Release:
    """Create or raise the allocation of a programme to its configured ``budget_idr``.

    A configured figure below the recorded allocation is ignored (allocations are never
    lowered) with a warning. Records the programme's premium rates. Then books whatever
    held contributions now fit."""
    key = (programme.id, programme.funding_source)
    async with connection.transaction():
        await connection.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended('allocation:' || $1 || ':' || $2, 0))",
            *key,
        )
        await journal.open_accounts(connection, programme.id, programme.funding_source)
        await record_premium_rates(connection, programme)
        row = await connection.fetchrow(
            """SELECT fiscal_year, allocated_idr FROM ledger.budget_allocations
                WHERE programme = $1 AND funding_source = $2 FOR UPDATE""", *key)
        if row is None:
            booked = await connection.fetchval(
                """SELECT coalesce(sum(c.amount_idr), 0)::bigint
                     FROM ledger.live_contributions c
                    WHERE c.programme = $1 AND c.funding_source = $2""", *key)
            allocated = max(programme.budget_idr, booked)
            reason = f"programme configuration {programme.id}: budget_idr"
            if allocated > programme.budget_idr:
                reason += " (raised to what was booked before the budget ceiling existed)"
            await _record_and_set(
                connection, programme=programme.id, funding_source=programme.funding_source,
                fiscal_year=programme.fiscal_year, previous=0, allocated=allocated,
                source="configuration", reason=reason, changed_by=changed_by, create=True)
            log.info("budget allocation of %s set to Rp%s", programme.id, f"{allocated:,}")
        elif row["fiscal_year"] != programme.fiscal_year:
            log.warning("programme %s: fiscal_year %d in the file, %d in the ledger; kept",
                        programme.id, programme.fiscal_year, row["fiscal_year"])
        elif programme.budget_idr > row["allocated_idr"]:
            await _record_and_set(
                connection, programme=programme.id, funding_source=programme.funding_source,
                fiscal_year=row["fiscal_year"], previous=row["allocated_idr"],
                allocated=programme.budget_idr, source="configuration",
                reason=f"programme configuration {programme.id}: budget_idr raised",
                changed_by=changed_by, create=False)
            log.info("budget allocation of %s raised to Rp%s", programme.id,
                     f"{programme.budget_idr:,}")
        elif programme.budget_idr < row["allocated_idr"]:
            log.warning("programme %s: budget_idr Rp%s is below the recorded allocation Rp%s; "
                        "an allocation is never lowered", programme.id,
                        f"{programme.budget_idr:,}", f"{row['allocated_idr']:,}")
    return await release_held(connection, *key)


async def raise_allocation(
    connection: asyncpg.Connection, *, programme: str, amount_idr: int, reason: str,
    changed_by: str, funding_source: str | None = None,
) -> tuple[int, int, Release]:
    """Raise an existing allocation by ``amount_idr``, record why and by whom, and book the
    held contributions that now fit, in one transaction. Returns (previous, new, release)."""
    if amount_idr <= 0:
        raise BudgetError("the amount to raise by must be a positive number of rupiah")
    if not reason.strip():
        raise BudgetError("a reason is required")
    async with connection.transaction():
        rows = await connection.fetch(
            """SELECT funding_source, fiscal_year, allocated_idr FROM ledger.budget_allocations
                WHERE programme = $1 AND ($2::text IS NULL OR funding_source = $2)
                ORDER BY funding_source FOR UPDATE""", programme, funding_source)
        if not rows:
            raise BudgetError(f"no budget allocation for programme {programme!r}"
                              + (f" and funding source {funding_source!r}"
                                 if funding_source else "")
                              + " (the ledger creates it from the programme file on start)")
        if len(rows) > 1:
            raise BudgetError(f"programme {programme!r} has several funding sources; "
                              "name one with --funding-source")
        row = rows[0]
        previous = row["allocated_idr"]
        new = previous + amount_idr
        await _record_and_set(
            connection, programme=programme, funding_source=row["funding_source"],
            fiscal_year=row["fiscal_year"], previous=previous, allocated=new, source="command",
            reason=reason.strip(), changed_by=changed_by, create=False)
        release = await release_held(connection, programme, row["funding_source"])
    log.info("budget allocation of %s raised from Rp%s to Rp%s", programme, f"{previous:,}",
             f"{new:,}")
    return previous, new, release
