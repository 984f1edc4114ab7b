"""Every coverage figure computed straight from finance.contributions, the way a finance
officer would, to hold the projector, the API, the gauges and the page against it."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import asyncpg

from schemas.events import LedgerEvent
from services.domain.coverage_fold import GroupKey, MonthKey, WorkerKey, deltas, group_deltas

COVERED = "status IN ('booked', 'billed', 'paid')"

_TALLY = f"""
SELECT {{key}} AS key,
       count(DISTINCT nik) FILTER (WHERE {COVERED}) AS active_workers,
       count(*) FILTER (WHERE {COVERED}) AS contributions_booked,
       coalesce(sum(amount_idr) FILTER (WHERE {COVERED}), 0)::bigint AS booked_idr,
       count(DISTINCT nik) FILTER (WHERE status = 'held') AS awaiting_budget_workers,
       count(*) FILTER (WHERE status = 'held') AS awaiting_budget_contributions,
       coalesce(sum(amount_idr) FILTER (WHERE status = 'held'), 0)::bigint
           AS awaiting_budget_idr,
       count(DISTINCT nik) FILTER (WHERE {COVERED} AND bpjs = 'verified') AS verified_workers,
       count(DISTINCT nik) FILTER (WHERE {COVERED} AND bpjs IS NULL) AS awaiting_bpjs_workers
  FROM (SELECT c.*, m.status AS bpjs
          FROM finance.contributions c
          LEFT JOIN finance.bpjs_members m USING (programme, nik)) contributions
 WHERE programme = $1 AND status IN ('booked', 'billed', 'paid', 'held')
 GROUP BY 1 ORDER BY 1
"""

TALLY_FIELDS = ("active_workers", "contributions_booked", "booked_idr",
                "awaiting_budget_workers", "awaiting_budget_contributions",
                "awaiting_budget_idr", "verified_workers", "awaiting_bpjs_workers")


async def ledger_figures(connection: asyncpg.Connection, programme: str,
                         headline_period: str) -> dict[str, Any]:
    """The figures of one programme as plain SQL over finance.contributions gives them."""
    total = await connection.fetchrow(_TALLY.format(key="''"), programme)
    figures: dict[str, Any] = {f: (total[f] if total else 0) for f in TALLY_FIELDS}
    for dimension, column in (("by_opd", "opd_code"), ("by_category", "category"),
                              ("by_kecamatan", "kecamatan")):
        rows = await connection.fetch(_TALLY.format(key=column), programme)
        figures[dimension] = {r["key"]: {f: r[f] for f in TALLY_FIELDS} for r in rows}
    months = await connection.fetch(
        f"""SELECT period, count(DISTINCT nik) AS covered_workers,
                   sum(amount_idr)::bigint AS booked_idr
              FROM finance.contributions WHERE programme = $1 AND {COVERED}
             GROUP BY period ORDER BY period""", programme)
    figures["months"] = {r["period"]: (r["covered_workers"], r["booked_idr"]) for r in months}
    # distinct workers with a booked month, across every programme, in this programme's
    # months
    everyone = await connection.fetch(
        f"""SELECT period, count(DISTINCT nik) AS n FROM finance.contributions
             WHERE {COVERED} GROUP BY period ORDER BY period""")
    all_programmes = {r["period"]: r["n"] for r in everyone}
    figures["covered_all_programmes"] = {p: all_programmes[p] for p in figures["months"]}
    figures["covered_in_headline_period"] = all_programmes.get(headline_period, 0)
    return figures


def as_figures(snapshot: dict[str, Any]) -> dict[str, Any]:
    """A snapshot (or a /coverage.json entry) in the shape of :func:`ledger_figures`."""
    figures: dict[str, Any] = {f: snapshot[f] for f in TALLY_FIELDS}
    for dimension in ("by_opd", "by_category", "by_kecamatan"):
        figures[dimension] = {k: {f: v[f] for f in TALLY_FIELDS}
                              for k, v in sorted(snapshot[dimension].items())}
    months = [m for m in snapshot["months"] if m["covered_workers"]]
    figures["months"] = {m["period"]: (m["covered_workers"], m["booked_idr"]) for m in months}
    figures["covered_all_programmes"] = {m["period"]: m["covered_all_programmes"]
                                         for m in months}
    figures["covered_in_headline_period"] = snapshot["covered_in_headline_period"]
    return figures


class MemoryTotals:
    """The coverage tables as dictionaries, changed as services/projector/fold.py changes
    them (a fake of the adapter over the same pure fold, for unit tests)."""

    def __init__(self) -> None:
        self.applied: set[int] = set()
        self.months: dict[MonthKey, list[int]] = {}
        self.workers: dict[WorkerKey, list[int]] = {}
        self.groups: dict[GroupKey, list[int]] = {}
        self.paid: dict[str, list[int]] = {}

    def apply(self, events: Iterable[LedgerEvent]) -> list[LedgerEvent]:
        fresh = []
        for event in events:
            if event.outbox_id not in self.applied:
                self.applied.add(event.outbox_id)
                fresh.append(event)
        change = deltas(fresh)
        _add(self.months, change.months)
        _add(self.workers, change.workers)
        now = {k: (self.workers[k][0], self.workers[k][2]) for k in change.workers}
        _add(self.groups, group_deltas(change.workers, now))
        _add(self.paid, change.paid)
        return fresh

    def tally(self, programme: str, dimension: str = "total", key: str = "") -> list[int]:
        """active workers, months booked, rupiah booked, workers awaiting, months held,
        rupiah held."""
        return self.groups.get((programme, dimension, key), [0] * 6)


def _add(into: dict[Any, list[int]], change: dict[Any, list[int]]) -> None:
    for key, values in change.items():
        row = into.setdefault(key, [0] * len(values))
        for i, v in enumerate(values):
            row[i] += v


async def fold_outbox(connection: asyncpg.Connection) -> list[LedgerEvent]:
    """Fold every outbox row the projector has not applied yet, as the projector does with
    the events the relay sends (without the broker); returns the events applied now."""
    from services.projector import fold

    rows = await connection.fetch(
        """SELECT event FROM ledger.outbox o
            WHERE NOT EXISTS (SELECT 1 FROM coverage.applied a WHERE a.outbox_id = o.outbox_id)
            ORDER BY outbox_id""")
    return await fold.apply(connection, [LedgerEvent.model_validate_json(r["event"])
                                         for r in rows])
