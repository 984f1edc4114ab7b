"""The projector's Faust app: coverage folded from what the ledger committed, published by
the leader.

Every figure comes from the ledger (the system of record), never from what the validator
intended: each booking transaction writes what it booked, held, cancelled, credited and
settled to the ledger's outbox, the ledger relays it to iuran.ledger.v1, and the ``fold``
agent applies each batch of those events to the running totals (the coverage.* tables) in
one PostgreSQL transaction, skipping the events already applied (services.projector.fold),
then acks it. The agents of all projector processes share the topic's partitions (keyed by
programme); every process reads the totals from PostgreSQL, so all of them compute the same
global figures. The totals are read again when this process applied events, and at least
every REFRESH_SECONDS when the change marker moved (events another process applied).

Only the Faust leader (the member assigned the leader topic's single partition; an app
without tables gets aiokafka's round-robin assignor from Faust, which still hands that
partition to exactly one member) publishes
snapshots on iuran.coverage.v1 and exports the coverage gauges, so dashboards need no
``max by``; a process that stops being leader clears its gauges. Any process answers
GET /coverage with the figures it last read.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

import asyncpg
import faust
from aiohttp import web

from schemas.events import TOPIC_COVERAGE, TOPIC_LEDGER, CoverageSnapshot
from services.domain.coverage import snapshots
from services.domain.programme import Programme
from services.ledger.coverage import changes, read_coverage
from services.ledger.migrate import unmigrated
from services.projector.applier import Applier, catch_up
from services.runtime import metrics
from services.runtime.database import RETRYABLE
from services.runtime.faust_worker import create_faust_app
from services.runtime.lag import Positions, install_faust_lag
from services.runtime.settings import Settings

log = logging.getLogger(__name__)

APP_ID = "iuran-projector"
REFRESH_SECONDS = 1.0  # the longest events another process applied wait to be seen
BATCH_MAX = 100  # ledger events folded in one transaction (each one ledger batch)
BATCH_WITHIN_SECONDS = 0.05  # the longest a batch waits to fill
# The leader applies outbox rows this old that no delivery brought, from PostgreSQL.
CATCH_UP_GRACE_SECONDS = 30.0
CATCH_UP_EVERY_SECONDS = 10.0
REPUBLISH_SECONDS = 30.0  # the leader sends unchanged snapshots again this often
REFRESH_TIMEOUT = 30.0  # a read that takes longer is abandoned and tried again
_GAUGES = (metrics.ACTIVE_WORKERS, metrics.COVERAGE_RATIO, metrics.COVERAGE_TARGET_RATIO,
           metrics.COVERAGE_MEMBERS, metrics.AWAITING_BUDGET_WORKERS,
           metrics.AWAITING_BUDGET_IDR, metrics.BPJS_VERIFIED_WORKERS,
           metrics.BPJS_AWAITING_WORKERS)


@dataclass
class Projection:
    """The coverage figures this process last read from the ledger."""

    programmes: dict[str, Programme]
    snapshots: list[CoverageSnapshot] = field(default_factory=list)
    marker: int | None = None
    exporting: bool = False  # this process set the coverage gauges (it leads)
    schema: str | None = None  # why the ledger's schema cannot be read yet
    applier: Applier | None = None

    def readiness(self) -> tuple[bool, str]:
        """Not ready while the ledger's schema is not migrated, or while a batch of ledger
        events waits to be applied."""
        if self.schema is not None:
            return False, self.schema
        if self.applier is not None and self.applier.waiting_for is not None:
            return False, f"waiting for {self.applier.waiting_for}"
        return True, "ok"

    async def refresh(self, connection: asyncpg.Connection) -> bool:
        """Read the figures again when the ledger changed; True when they changed."""
        if self.marker is not None and await changes(connection) == self.marker:
            return False
        started = time.perf_counter()
        ledger = await read_coverage(connection)
        self.snapshots = snapshots(self.programmes, ledger, datetime.now(UTC))
        self.marker = ledger.marker
        metrics.COVERAGE_REFRESH_SECONDS.observe(time.perf_counter() - started)
        return True

    def export(self, leader: bool) -> bool:
        """Set the coverage gauges when leader; clear them when leadership was lost.
        True when this process has just become the one that exports."""
        if not leader:
            if self.exporting:
                for gauge in _GAUGES:
                    gauge.clear()
                self.exporting = False
            return False
        started = not self.exporting
        for s in self.snapshots:
            metrics.ACTIVE_WORKERS.labels(s.programme).set(s.active_workers)
            metrics.COVERAGE_RATIO.labels(s.programme).set(s.coverage_ratio)
            metrics.COVERAGE_TARGET_RATIO.labels(s.programme).set(s.target_ratio)
            metrics.COVERAGE_MEMBERS.labels(s.programme).set(s.members)
            metrics.AWAITING_BUDGET_WORKERS.labels(s.programme).set(s.awaiting_budget_workers)
            metrics.AWAITING_BUDGET_IDR.labels(s.programme).set(s.awaiting_budget_idr)
            metrics.BPJS_VERIFIED_WORKERS.labels(s.programme).set(s.verified_workers)
            metrics.BPJS_AWAITING_WORKERS.labels(s.programme).set(s.awaiting_bpjs_workers)
        self.exporting = True
        return started

    async def handler(self, _: web.Request) -> web.Response:
        """GET /coverage: the snapshots (503 until the ledger was read once)."""
        if self.marker is None:
            return web.json_response({"error": "coverage not read from the ledger yet"},
                                     status=503)
        return web.json_response([s.model_dump(mode="json") for s in self.snapshots])


def create_app(settings: Settings, programmes: dict[str, Programme],
               projection: Projection | None = None) -> faust.App:
    app = create_faust_app(APP_ID, settings, "projector")
    view = projection or Projection(programmes)
    ledger = app.topic(TOPIC_LEDGER, key_type=bytes, value_type=bytes,
                       partitions=settings.partitions)
    coverage = app.topic(TOPIC_COVERAGE, key_type=bytes, value_type=bytes,
                         partitions=settings.partitions)

    positions = Positions("projector", lambda: app.consumer.assignment())
    view.applier = Applier(settings.database_url or "")
    applied = asyncio.Event()  # this process changed the totals: read them again now

    @app.agent(ledger, name="fold")
    async def fold(stream: faust.StreamT[bytes]) -> None:
        """Each batch folded in one transaction, then acked (noack_take: take() would ack
        a batch as soon as the loop asks for the next one)."""
        assert view.applier is not None
        batches = stream.noack_take(  # type: ignore[attr-defined]  # Stream has it, StreamT not
            BATCH_MAX, within=BATCH_WITHIN_SECONDS)
        async for events in batches:
            for event in events:
                positions.took(event.message.tp, event.message.offset)
            metrics.EVENTS_CONSUMED.labels("projector", TOPIC_LEDGER).inc(len(events))
            if await view.applier.handle([event.message for event in events]):
                applied.set()
            for event in events:
                await stream.ack(event)

    changed = asyncio.Event()  # new figures, or a new leader: the snapshots are due

    @app.task  # type: ignore[untyped-decorator]  # faust types it loosely
    async def follow_the_ledger() -> None:
        """Read the ledger every REFRESH_SECONDS; never waits on the broker."""
        if not settings.database_url:
            log.error("no database URL: the projector reads coverage from the ledger")
            return
        pool: asyncpg.Pool | None = None
        while True:
            try:
                if pool is None:
                    pool = await asyncpg.create_pool(settings.database_url, min_size=1,
                                                     max_size=1)
                async with pool.acquire() as connection:
                    if view.marker is None:  # until the ledger was read once
                        view.schema = await unmigrated(connection)
                    if view.schema is None and await asyncio.wait_for(
                            view.refresh(connection), REFRESH_TIMEOUT):
                        changed.set()
            except (*RETRYABLE, asyncpg.PostgresError) as exc:
                log.warning("could not read coverage from the ledger (%s); keeping the "
                            "last figures", type(exc).__name__)
            try:
                if view.export(app.is_leader()):
                    changed.set()
            except Exception:  # the consumer between two assignments: next round
                log.exception("could not tell whether this projector leads")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(applied.wait(), timeout=REFRESH_SECONDS)
            applied.clear()

    @app.task  # type: ignore[untyped-decorator]  # faust types it loosely
    async def apply_stragglers() -> None:
        """The leader applies the outbox rows no delivery brought within the grace period
        (the embedded broker keeps its topics in memory), so the totals converge to the
        ledger whatever the broker lost."""
        swept = 0
        connection: asyncpg.Connection | None = None
        while True:
            await asyncio.sleep(CATCH_UP_EVERY_SECONDS)
            try:
                if not settings.database_url or view.schema is not None \
                        or not app.is_leader():
                    continue
                if connection is None or connection.is_closed():
                    connection = await asyncpg.connect(settings.database_url, timeout=10)
                swept, found = await catch_up(connection, swept, CATCH_UP_GRACE_SECONDS)
                if found:
                    log.warning("%d ledger events applied from the outbox: no delivery "
                                "brought them within %.0f s", len(found),
                                CATCH_UP_GRACE_SECONDS)
                    metrics.LEDGER_EVENTS_APPLIED.inc(len(found))
                    applied.set()
            except Exception as exc:  # PostgreSQL away, between two assignments: next round
                log.warning("outbox catch-up skipped (%s)", type(exc).__name__)
                if connection is not None:
                    connection.terminate()
                connection = None

    @app.task  # type: ignore[untyped-decorator]  # faust types it loosely
    async def publish_snapshots() -> None:
        """The leader sends the snapshots when they changed, and every REPUBLISH_SECONDS.
        A send that waits on the broker (a rebalance, an outage) holds up only this task."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), timeout=REPUBLISH_SECONDS)
            changed.clear()
            if not view.exporting or not view.snapshots:
                continue
            try:
                for s in list(view.snapshots):
                    await coverage.send(key=s.programme.encode(),
                                        value=s.model_dump_json().encode())
            except Exception:  # a broker fault: the next change or round sends them again
                log.exception("could not publish coverage snapshots")

    install_faust_lag(app, "projector", [TOPIC_LEDGER])
    return app
