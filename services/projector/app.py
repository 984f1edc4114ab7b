"""The projector's Faust app: a table keyed by NIK folds contribution schedules into each
worker's covered months; totals are folded from the table and published as snapshots."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import asyncpg
import faust
from aiohttp import web

from schemas.events import (
    TOPIC_CONTRIBUTIONS,
    TOPIC_COVERAGE,
    CoverageSnapshot,
    CoverageTotals,
)
from services.domain.coverage import (
    apply_schedule,
    coverage_ratio,
    read_facts,
    totals,
    workers_to_reach,
    yearly_cost,
)
from services.domain.programme import Programme
from services.projector.bootstrap import empty_partitions, ledger_states, partition_of
from services.runtime import metrics
from services.runtime.faust_worker import create_faust_app
from services.runtime.lag import install_faust_lag
from services.runtime.settings import Settings

log = logging.getLogger(__name__)

APP_ID = "iuran-projector"
SNAPSHOT_SECONDS = 5.0


def snapshots(programmes: dict[str, Programme], folded: dict[str, Any]) -> list[CoverageSnapshot]:
    now = datetime.now(UTC)
    result = []
    for programme_id, entry in sorted(folded.items()):
        programme = programmes.get(programme_id)
        total = entry["total"]
        outside = programme.coverage.registered_outside_programme if programme else 0
        workforce = programme.coverage.workforce if programme else 0
        active = total["active_workers"]
        target = programme.coverage.target_ratio if programme else 0.0
        goal = programme.coverage.goal_ratio if programme else 1.0
        result.append(CoverageSnapshot(
            as_of=now,
            programme=programme_id,
            active_workers=active,
            contributions_booked=total["contributions_booked"],
            booked_idr=total["booked_idr"],
            registered_outside_programme=outside,
            workforce=workforce,
            coverage_ratio=round(coverage_ratio(outside, active, workforce), 6),
            target_ratio=target,
            goal_ratio=goal,
            goal_year=programme.coverage.goal_year if programme else 2045,
            workers_to_target=workers_to_reach(target, outside, active, workforce),
            workers_to_goal=workers_to_reach(goal, outside, active, workforce),
            next_year_cost_idr=yearly_cost(
                active, programme.premium.monthly_idr if programme else 0),
            registrations_by_day=dict(sorted(entry.get("registrations_by_day", {}).items())),
            deregistrations_by_day=dict(
                sorted(entry.get("deregistrations_by_day", {}).items())),
            by_opd={k: CoverageTotals(**v) for k, v in entry["by_opd"].items()},
            by_category={k: CoverageTotals(**v) for k, v in entry["by_category"].items()},
            by_kecamatan={k: CoverageTotals(**v) for k, v in entry["by_kecamatan"].items()},
        ))
    return result


def create_app(settings: Settings, programmes: dict[str, Programme]) -> faust.App:
    app = create_faust_app(APP_ID, settings, "projector")
    contributions = app.topic(TOPIC_CONTRIBUTIONS, key_type=bytes, value_type=bytes,
                              partitions=settings.partitions)
    coverage = app.topic(TOPIC_COVERAGE, key_type=bytes, value_type=bytes,
                         partitions=settings.partitions)
    workers = app.Table("coverage-workers", default=None, partitions=settings.partitions)

    @workers.on_recover
    async def seed_from_ledger() -> None:
        """Partitions that recovered nothing are read back from the ledger."""
        if not settings.database_url:
            return
        assigned = {tp.partition for tp in app.assignor.assigned_actives()
                    if tp.topic == TOPIC_CONTRIBUTIONS}
        missing = empty_partitions(assigned, workers.keys(), settings.partitions)
        if not missing:
            return
        try:
            states = await ledger_states(settings.database_url, missing, settings.partitions)
        except (OSError, asyncpg.PostgresError) as exc:
            log.warning("could not read the ledger to seed coverage (%s); totals start "
                        "from the event stream only", type(exc).__name__)
            return
        for nik, state in states.items():
            workers.data[nik] = state
            workers.send_changelog(partition_of(nik, settings.partitions), nik, state)
        if states:
            log.info("seeded %d workers of %d partitions from the ledger",
                     len(states), len(missing))

    @app.agent(contributions, name="project")
    async def project(stream: faust.StreamT[bytes]) -> None:
        async for event in stream.events():
            message = event.message
            metrics.EVENTS_CONSUMED.labels("projector", message.topic).inc()
            try:
                schedule = read_facts(message.value or b"")
            except ValueError:
                log.error("unreadable contribution schedule skipped by the projector "
                          "(the ledger rejects it)",
                          extra={"topic": message.topic, "partition": message.partition,
                                 "offset": message.offset})
                continue
            try:
                new_state = apply_schedule(workers.get(schedule.nik), schedule)
                if new_state is not None:
                    workers[schedule.nik] = new_state
            except Exception:
                log.exception("projector failed on a schedule",
                              extra={"topic": message.topic, "partition": message.partition,
                                     "offset": message.offset})

    def current() -> list[CoverageSnapshot]:
        return snapshots(programmes, totals(value for _, value in workers.items() if value))

    @app.timer(SNAPSHOT_SECONDS)
    async def publish() -> None:
        for snapshot in current():
            metrics.ACTIVE_WORKERS.labels(snapshot.programme).set(snapshot.active_workers)
            metrics.COVERAGE_RATIO.labels(snapshot.programme).set(snapshot.coverage_ratio)
            metrics.COVERAGE_TARGET_RATIO.labels(snapshot.programme).set(snapshot.target_ratio)
            await coverage.send(key=snapshot.programme.encode(),
                                value=snapshot.model_dump_json().encode())

    async def coverage_handler(_: web.Request) -> web.Response:
        body = [s.model_dump(mode="json") for s in current()]
        return web.json_response(body)

    install_faust_lag(app, "projector", [TOPIC_CONTRIBUTIONS])
    app.conf.iuran_coverage_handler = coverage_handler  # type: ignore[attr-defined]
    return app
