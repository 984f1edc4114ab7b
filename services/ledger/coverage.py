"""Read the coverage running totals (the coverage.* tables) in one snapshot.

The coverage projector folds what the ledger committed (iuran.ledger.v1, relayed from the
ledger's outbox) into those tables, distinct worker counts included, so a read costs one row
per programme and group and one per programme, month and (OPD, category, kecamatan),
whatever the number of contributions, and one per programme for what was paid. The totals
equal the ledger's own figures once the projector has applied every event the ledger
committed (docs/operations.md, "Coverage figures", says how soon). ``changes`` polls the
change marker alone: equal markers mean equal figures, and a reader that saw no change
needs no other query.
"""

from __future__ import annotations

import asyncpg

from services.domain.coverage import DIMENSIONS, LedgerCoverage, MonthTally, Tally

# Every term only grows: the months' changes, the bills settled (what was paid) and the
# standing BPJS verdicts applied.
_MARKER = """
SELECT (SELECT coalesce(sum(changes), 0) FROM coverage.months)::bigint
       + (SELECT coalesce(sum(settled_bills), 0) FROM coverage.paid)::bigint
       + (SELECT coalesce(sum(changes), 0) FROM coverage.verdict_changes)::bigint
"""

# What BPJS was paid per programme: its settled bills (equal to
# finance.budget_utilisation.paid_idr once every settlement is applied).
_PAID = "SELECT programme, paid_idr FROM coverage.paid WHERE settled_bills > 0"

_MONTHS = """
SELECT programme, period, sum(booked_months)::bigint AS covered,
       sum(booked_idr)::bigint AS booked_idr, sum(held_months)::bigint AS held,
       sum(held_idr)::bigint AS held_idr
  FROM coverage.months
 GROUP BY programme, period
HAVING sum(booked_months) <> 0 OR sum(held_months) <> 0
 ORDER BY programme, period
"""

_GROUPS = """
SELECT programme, dimension, key, active_workers, contributions_booked, booked_idr,
       awaiting_budget_workers, awaiting_budget_contributions, awaiting_budget_idr,
       verified_workers, awaiting_bpjs_workers
  FROM coverage.groups
 WHERE active_workers <> 0 OR awaiting_budget_workers <> 0
 ORDER BY programme, dimension, key
"""


async def changes(connection: asyncpg.Connection) -> int:
    """The change marker: it grows in every transaction that changes a coverage figure."""
    return int(await connection.fetchval(_MARKER))


async def read_coverage(connection: asyncpg.Connection) -> LedgerCoverage:
    """Every programme's tallies, groups and months, as of one consistent snapshot."""
    async with connection.transaction(isolation="repeatable_read", readonly=True):
        marker = await changes(connection)
        month_rows = await connection.fetch(_MONTHS)
        group_rows = await connection.fetch(_GROUPS)
        paid_rows = await connection.fetch(_PAID)
    totals: dict[str, Tally] = {}
    groups: dict[str, dict[str, dict[str, Tally]]] = {}
    for row in group_rows:
        tally = Tally(
            active_workers=row["active_workers"],
            contributions_booked=row["contributions_booked"],
            booked_idr=row["booked_idr"],
            awaiting_budget_workers=row["awaiting_budget_workers"],
            awaiting_budget_contributions=row["awaiting_budget_contributions"],
            awaiting_budget_idr=row["awaiting_budget_idr"],
            verified_workers=row["verified_workers"],
            awaiting_bpjs_workers=row["awaiting_bpjs_workers"],
        )
        if row["dimension"] == "total":
            totals[row["programme"]] = tally
        else:
            by = groups.setdefault(row["programme"], {d: {} for d in DIMENSIONS})
            by[row["dimension"]][row["key"]] = tally
    months = tuple(
        MonthTally(programme=r["programme"], period=r["period"], covered_workers=r["covered"],
                   booked_idr=r["booked_idr"], awaiting_budget_contributions=r["held"],
                   awaiting_budget_idr=r["held_idr"])
        for r in month_rows)
    paid = {r["programme"]: r["paid_idr"] for r in paid_rows}
    return LedgerCoverage(marker=marker, totals=totals, groups=groups, months=months,
                          paid=paid)
