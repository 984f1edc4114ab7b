"""Replaying contributions the ledger refused for a configuration reason
(``amount_not_programme_premium``: the validator and the ledger disagreed on a programme's
premium, e.g. one restarted with a new rate and the other not yet). Once the configuration
agrees, an operator replays them: each refused schedule is rebuilt from the worker's
enrolment with the premium of its months, checked against the rates the ledger has in force,
and booked like any schedule (same contribution ids: a month booked since is not booked
twice)."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime

import asyncpg

from schemas.events import Category, ContributionSchedule
from services.domain.money import rupiah
from services.domain.periods import period_index
from services.domain.programme import Programme
from services.domain.schedule import contributions_for
from services.ledger import book

log = logging.getLogger(__name__)

PREMIUM_MISMATCH = "amount_not_programme_premium"


class ReplayError(Exception):
    """Nothing was replayed; the message says why and what to do."""


@dataclass
class Replay:
    schedules: int = 0
    booked: int = 0
    held: int = 0
    still_refused: int = 0
    skipped: list[str] = field(default_factory=list)  # schedules that could not be rebuilt


# Refused months not booked or held since, per schedule.
_REFUSED = """
SELECT f.schedule_id, f.registration_event_id, f.nik, f.opd_code, f.funding_source,
       jsonb_object_agg(f.period, f.generation) AS generations
  FROM ledger.refused_contributions f
 WHERE f.programme = $1 AND f.reason = $2
   AND NOT EXISTS (SELECT 1 FROM ledger.contributions c
                    WHERE c.contribution_id = f.contribution_id)
   AND NOT EXISTS (SELECT 1 FROM ledger.held_contributions h
                    WHERE h.contribution_id = f.contribution_id)
 GROUP BY f.schedule_id, f.registration_event_id, f.nik, f.opd_code, f.funding_source
 ORDER BY min(f.seen_at), f.schedule_id
"""

# The worker's enrolment by that registration, as the validator keeps it.
_ENROLMENT = """
SELECT e ->> 'category' AS category, e ->> 'kecamatan' AS kecamatan
  FROM registry.worker_state s
 CROSS JOIN LATERAL jsonb_array_elements(s.state -> 'enrollments') AS e
 WHERE s.nik = $1 AND e ->> 'event_id' = $2::text
"""

_RATES = """SELECT effective_from, monthly_idr, jkk_idr, jkm_idr
              FROM ledger.current_premium_rates WHERE programme = $1 ORDER BY effective_from"""


async def replay_refused(connection: asyncpg.Connection, programme: Programme,
                         *, reason: str = PREMIUM_MISMATCH) -> Replay:
    """Rebuild and book the programme's contributions refused for ``reason`` (the
    connection must have been through :func:`book.prepare`). Raises :class:`ReplayError`
    when the ledger's rates in force differ from ``programme``'s: the configuration does
    not agree yet."""
    rates = await connection.fetch(_RATES, programme.id)
    _check_rates_agree(programme, rates)
    found = Replay()
    schedules = []
    for row in await connection.fetch(_REFUSED, programme.id, reason):
        enrolment = await connection.fetchrow(_ENROLMENT, row["nik"],
                                              str(row["registration_event_id"]))
        if enrolment is None:
            found.skipped.append(f"schedule {row['schedule_id']}: the validator keeps no "
                                 "enrolment for its registration")
            continue
        generations: dict[str, int] = json.loads(row["generations"])
        periods = sorted(generations, key=period_index)
        schedules.append(ContributionSchedule.model_construct(
            schedule_id=row["schedule_id"], kind="due", nik=row["nik"],
            programme=programme.id, opd_code=row["opd_code"],
            category=Category(enrolment["category"]), kecamatan=enrolment["kecamatan"],
            funding_source=row["funding_source"],
            registration_event_id=row["registration_event_id"],
            occurred_at=datetime.now(UTC),
            contributions=contributions_for(programme, row["nik"], periods, generations),
            warnings=[]))
    if schedules:
        result = await book.book_schedules(connection, schedules)
        found.booked = sum(result.booked.values())
        found.held = sum(result.held.values())
    found.schedules = len(schedules)
    found.still_refused = len(await connection.fetch(_REFUSED, programme.id, reason))
    log.info("refused contributions of %s replayed: %d schedules, %d booked, %d held, "
             "%d still refused", programme.id, found.schedules, found.booked, found.held,
             found.still_refused)
    return found


def _check_rates_agree(programme: Programme, rates: list[asyncpg.Record]) -> None:
    recorded = [(r["effective_from"], r["monthly_idr"], r["jkk_idr"], r["jkm_idr"])
                for r in rates]
    configured = [(f, p.monthly_idr, p.jkk_idr, p.jkm_flat_idr)
                  for f, p in programme.premium_rates()]
    if recorded != configured:
        shown = ", ".join(f"{rupiah(m)} from {f}" for f, m, _, _ in recorded) or "none recorded"
        wanted = ", ".join(f"{rupiah(m)} from {f}" for f, m, _, _ in configured)
        raise ReplayError(
            f"the ledger's premiums of {programme.id} ({shown}) are not this configuration's "
            f"({wanted}): restart the ledger with this configuration, then replay")
