"""What a renewal reads from the ledger and the registry, and what it records there: the
workers of the old programme (finance.cover_expiry), those the new programme already has,
the worker record of each one's last registration, the room left in the new programme's
budget, and the renewal's priority order (ledger.renewal_ranks), which the booking follows
when it releases months held for budget."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterable, Sequence
from uuid import UUID

import asyncpg
from pydantic import ValidationError

from schemas.events import Worker
from services.domain.programme import Programme
from services.domain.renewal import Candidate, RenewalPlan, continuous_months

# Workers of the old programme with a covered month, but not those a deregistration stopped.
_CANDIDATES = """
SELECT e.nik, e.opd_code, e.category, e.kecamatan, e.covered_through
  FROM finance.cover_expiry e
 WHERE e.programme = $1 AND ($2::text[] IS NULL OR e.nik = ANY($2::text[]))
   AND NOT EXISTS (SELECT 1 FROM registry.decisions d
                    WHERE d.nik = e.nik AND d.programme = e.programme
                      AND d.event_type = 'deregistered' AND d.outcome <> 'rejected')"""

_DEREGISTERED = """
SELECT count(DISTINCT d.nik) FROM registry.decisions d
 WHERE d.programme = $1 AND d.event_type = 'deregistered' AND d.outcome <> 'rejected'"""

_COVERED = """
SELECT nik, array_agg(period) AS periods FROM ledger.live_contributions
 WHERE nik = ANY($1::text[]) GROUP BY nik"""

# In the new programme already: months the ledger holds, or a registration the validator took.
_ENROLLED = """
SELECT nik FROM ledger.live_contributions WHERE programme = $1
UNION
SELECT nik FROM ledger.held_contributions h WHERE programme = $1
   AND NOT EXISTS (SELECT 1 FROM ledger.held_resolutions r
                    WHERE r.contribution_id = h.contribution_id AND r.outcome = 'cancelled')
UNION
SELECT nik FROM registry.decisions
 WHERE programme = $1 AND event_type = 'registered' AND outcome <> 'rejected'"""

# The worker record of the last registration an OPD sent of each NIK through the gateway.
_DETAILS = """
SELECT DISTINCT ON (r.nik) r.nik, r.event
  FROM registry.submission_rows r JOIN registry.submissions s USING (submission_id)
 WHERE r.nik = ANY($1::text[]) AND r.event_type = 'registered' AND r.event IS NOT NULL
 ORDER BY r.nik, s.submitted_at DESC, r.row_number DESC"""

_ROOM = """
SELECT allocated_idr - booked_idr FROM ledger.budget_allocations
 WHERE programme = $1 AND funding_source = $2"""

_RANK = """
INSERT INTO ledger.renewal_ranks (programme, nik, rank, renewal_of, priority, requested_by)
SELECT $1, w.nik, coalesce((SELECT max(rank) FROM ledger.renewal_ranks WHERE programme = $1), 0)
                  + w.place, $3, $4, $5
  FROM unnest($2::text[]) WITH ORDINALITY AS w (nik, place)
ON CONFLICT (programme, nik) DO NOTHING"""

# A registration is settled when the validator rejected it or the ledger holds its months.
_SETTLED = """
SELECT count(*) FROM registry.decisions d
 WHERE d.event_id = ANY($1::uuid[])
   AND (d.outcome = 'rejected'
        OR EXISTS (SELECT 1 FROM ledger.contributions c WHERE c.registration_event_id = d.event_id)
        OR EXISTS (SELECT 1 FROM ledger.held_contributions h
                    WHERE h.registration_event_id = d.event_id))"""


async def candidates(connection: asyncpg.Connection, source: str,
                     niks: Iterable[str] | None = None) -> list[Candidate]:
    """The workers of ``source`` still enrolled (only ``niks`` when given)."""
    rows = await connection.fetch(_CANDIDATES, source, None if niks is None else list(niks))
    covered = {r["nik"]: r["periods"] for r in await connection.fetch(
        _COVERED, [r["nik"] for r in rows])}
    return [Candidate(nik=r["nik"], opd_code=r["opd_code"], category=r["category"],
                      kecamatan=r["kecamatan"], covered_through=r["covered_through"],
                      continuous_months=continuous_months(covered.get(r["nik"], ()),
                                                          r["covered_through"]))
            for r in rows]


async def deregistered(connection: asyncpg.Connection, source: str) -> int:
    return int(await connection.fetchval(_DEREGISTERED, source))


async def enrolled(connection: asyncpg.Connection, target: str) -> set[str]:
    return {r["nik"] for r in await connection.fetch(_ENROLLED, target)}


async def verified(connection: asyncpg.Connection, source: str) -> set[str]:
    """The NIKs of ``source`` whose standing at BPJS is verified (their latest verdict)."""
    return {r["nik"] for r in await connection.fetch(
        "SELECT nik FROM finance.bpjs_members WHERE programme = $1 AND status = 'verified'",
        source)}


async def details(connection: asyncpg.Connection, niks: Iterable[str]) -> dict[str, Worker]:
    """The worker record (name, birth date, sex, place) of each NIK's last registration;
    a NIK whose record was erased (retention) or never came through the gateway is absent."""
    found: dict[str, Worker] = {}
    for row in await connection.fetch(_DETAILS, list(niks)):
        try:
            found[row["nik"]] = Worker.model_validate(json.loads(row["event"])["worker"])
        except (ValidationError, KeyError, TypeError, ValueError):
            continue
    return found


async def room(connection: asyncpg.Connection, target: Programme) -> int:
    """The budget the new programme has left (its configured budget before the ledger opened
    its allocation)."""
    left = await connection.fetchval(_ROOM, target.id, target.funding_source)
    return target.budget_idr if left is None else int(left)


async def record_ranks(connection: asyncpg.Connection, plan: RenewalPlan, priority: str,
                       requested_by: str) -> None:
    """Each renewed worker's place in the priority order, after any earlier renewal's (a
    worker ranked before keeps the first place)."""
    async with connection.transaction():
        await connection.execute("LOCK TABLE ledger.renewal_ranks IN SHARE ROW EXCLUSIVE MODE")
        await connection.execute(_RANK, plan.target, [r.candidate.nik for r in plan.renewed],
                                 plan.source, priority, requested_by)


async def wait_settled(connection: asyncpg.Connection, event_ids: Sequence[UUID],
                       timeout: float) -> bool:
    """Wait until every registration is rejected or has its months in the ledger."""
    deadline = time.monotonic() + timeout
    while True:
        done = await connection.fetchval(_SETTLED, list(event_ids))
        if done >= len(event_ids):
            return True
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.5)

