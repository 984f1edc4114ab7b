"""The soak's latency seen from outside: some registrations are watched until all their
months are visible (committed) in ``finance.contributions``.

``booked_at`` is the start of the booking transaction, so a latency taken from it leaves
out the rest of that transaction and its commit. Ten registrations a second are watched
instead: one query every 25 ms asks the view for all those not yet complete (by
registration id, an indexed column), so the time seen is when a registration became
visible, at most one poll interval late. With many still pending (a queue has built up)
the interval grows by 1 ms per pending registration, to keep the cost of watching small;
its CPU is in PostgreSQL's figure of the soak.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any
from uuid import UUID

import asyncpg

from services.bench.ledger_sql import BOOKED
from services.bench.report import percentile

TICK = 0.025


class VisibleProbe:
    def __init__(self, url: str, months: int) -> None:
        self.url = url
        self.months = months
        self.watched = 0
        self.seen: dict[str, float] = {}  # registration id -> ms from send to visible
        self._pending: dict[UUID, float] = {}  # registration id -> when it was sent
        self._connection: asyncpg.Connection | None = None
        self._poller: asyncio.Task[None] | None = None

    async def __aenter__(self) -> VisibleProbe:
        self._connection = await asyncpg.connect(self.url)
        self._poller = asyncio.create_task(self._poll())
        return self

    async def __aexit__(self, *_: object) -> None:
        if self._pending:  # a last look at those still pending, then give up on them
            await self._look()
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller
        if self._connection is not None:
            await self._connection.close()

    def watch(self, registration_id: str, sent_at: float) -> None:
        self.watched += 1
        self._pending[UUID(registration_id)] = sent_at

    async def _poll(self) -> None:
        while True:
            if self._pending:
                await self._look()
            await asyncio.sleep(TICK + 0.001 * len(self._pending))

    async def _look(self) -> None:
        assert self._connection is not None
        rows = await self._connection.fetch(
            "SELECT registration_event_id AS id, count(*) AS n FROM finance.contributions "
            f"WHERE registration_event_id = ANY($1::uuid[]) AND {BOOKED} "
            "GROUP BY registration_event_id", list(self._pending))
        now = time.time()
        for row in rows:
            if row["n"] >= self.months:
                sent_at = self._pending.pop(row["id"])
                self.seen[str(row["id"])] = (now - sent_at) * 1000

    def summary(self, booked_ms: dict[str, float]) -> dict[str, Any]:
        """The watched registrations' latency to visible, and how much later than the
        ``booked_at`` figure each became visible (the transaction's rest, its commit and
        the poll interval)."""
        visible = sorted(self.seen.values())
        gaps = sorted(ms - booked_ms[i] for i, ms in self.seen.items() if i in booked_ms)
        result: dict[str, Any] = {"watched": self.watched, "seen": len(visible)}
        if visible:
            result.update({f"p{int(q * 100)}_ms": round(percentile(visible, q), 1)
                           for q in (0.5, 0.95, 0.99)})
            result["max_ms"] = round(visible[-1], 1)
        if gaps:
            result.update({"later_than_booked_at_p50_ms": round(percentile(gaps, 0.5), 1),
                           "later_than_booked_at_max_ms": round(gaps[-1], 1)})
        return result
