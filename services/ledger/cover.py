"""Whose cover ends when (finance.cover_expiry): the programme's time zone the view counts
months in, and the counts the ledger exports as a gauge."""

from __future__ import annotations

import asyncpg

from services.domain.programme import Programme
from services.runtime import metrics

# Workers whose cover ends within 1, 2 and 3 months (this month included) and that no other
# programme continues.
WITHIN_MONTHS = (1, 2, 3)

_ENDING = """
SELECT p.programme, w.within,
       count(e.nik) FILTER (WHERE e.months_left BETWEEN 1 AND w.within) AS workers
  FROM (SELECT DISTINCT programme FROM ledger.budget_allocations) p
  CROSS JOIN unnest($1::int[]) AS w(within)
  LEFT JOIN finance.cover_expiry e ON e.programme = p.programme AND e.renewed_to IS NULL
 GROUP BY p.programme, w.within"""


async def record_time_zone(connection: asyncpg.Connection, programme: Programme) -> None:
    """The programme's time zone, as its file names it, for finance.cover_expiry (a new row
    only when it differs from the latest)."""
    await connection.execute(
        """INSERT INTO ledger.programme_time_zones (programme, timezone)
           SELECT $1, $2
            WHERE (SELECT timezone FROM ledger.programme_time_zones WHERE programme = $1
                    ORDER BY zone_id DESC LIMIT 1) IS DISTINCT FROM $2""",
        programme.id, programme.timezone)


async def cover_ending(connection: asyncpg.Connection) -> dict[tuple[str, int], int]:
    """(programme, within months) -> workers whose cover ends by then with no renewal."""
    rows = await connection.fetch(_ENDING, list(WITHIN_MONTHS))
    return {(r["programme"], r["within"]): r["workers"] for r in rows}


async def refresh_cover_gauge(connection: asyncpg.Connection) -> None:
    for (programme, within), workers in (await cover_ending(connection)).items():
        metrics.COVER_ENDING_WORKERS.labels(programme, str(within)).set(workers)
