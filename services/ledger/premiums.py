"""A programme's premiums in the ledger: its dated rates recorded from the configuration
(``ledger.premium_rates``; the latest set is in force, ``ledger.current_premium_rates``),
so that a contribution is judged by the rate of its month."""

from __future__ import annotations

import json
import logging

import asyncpg

from services.domain.money import rupiah
from services.domain.programme import Programme
from services.domain.schedule import derived_id

log = logging.getLogger(__name__)

_LATEST = """SELECT rate_set FROM ledger.premium_rates WHERE programme = $1
              ORDER BY rate_id DESC LIMIT 1"""
_INSERT = """
INSERT INTO ledger.premium_rates (rate_set, programme, effective_from, monthly_idr, jkk_idr,
                                  jkm_idr)
SELECT $1, $2, f, m, k, j FROM unnest($3::text[], $4::bigint[], $5::bigint[], $6::bigint[])
    AS r(f, m, k, j)
"""


async def record_premium_rates(connection: asyncpg.Connection, programme: Programme) -> bool:
    """Record the programme's configured rates when they differ from the set in force.
    Returns whether a new set was recorded."""
    rates = programme.premium_rates()
    text = json.dumps([(f, p.monthly_idr, p.jkk_idr, p.jkm_flat_idr) for f, p in rates])
    rate_set = derived_id("premium-rates", programme.id, text)
    async with connection.transaction():
        await connection.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended('premium-rates:' || $1, 0))",
            programme.id)
        if await connection.fetchval(_LATEST, programme.id) == rate_set:
            return False
        await connection.execute(
            _INSERT, rate_set, programme.id, [f for f, _ in rates],
            [p.monthly_idr for _, p in rates], [p.jkk_idr for _, p in rates],
            [p.jkm_flat_idr for _, p in rates])
    log.info("premium rates of %s recorded: %s", programme.id,
             ", ".join(f"{rupiah(p.monthly_idr)} from {f}" for f, p in rates))
    return True
