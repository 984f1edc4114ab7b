"""A real Prometheus server scrapes the running services and answers queries on their
metrics after a batch has gone through them."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import asyncpg
import pytest

from schemas.events import TOPIC_REGISTRATIONS
from services.cli.service import EVERY_SERVICE
from services.runtime.settings import Settings
from services.runtime.stack import ServiceProcesses
from tests.integration.test_prometheus_rules import (
    PROMETHEUS,
    PROMETHEUS_DIR,
    run_prometheus,
    wait_for,
)
from tests.support.kafka import publish
from tests.support.workers import as_message, registration

pytestmark = pytest.mark.integration


@pytest.mark.skipif(PROMETHEUS is None, reason="prometheus is not installed (make tools)")
async def test_prometheus_scrapes_every_service_and_sees_the_batch(
    stack: ServiceProcesses, settings: Settings, db: asyncpg.Pool, session_dir: Path
) -> None:
    events = [registration() for _ in range(25)]
    await publish(settings, TOPIC_REGISTRATIONS, [as_message(e) for e in events])
    niks = [e.worker.nik for e in events]
    deadline = time.monotonic() + 90
    while await db.fetchval("SELECT count(*) FROM ledger.contributions WHERE nik = ANY($1)",
                            niks) < 25 * 12:
        assert time.monotonic() < deadline, "the batch was not booked"
        await asyncio.sleep(0.3)
    jobs = {f"iuran-{name}": [f"127.0.0.1:{settings.port_of(name)}"] for name in EVERY_SERVICE}

    def check() -> None:
        with run_prometheus(session_dir / "prometheus-services", jobs,
                            (PROMETHEUS_DIR / "alerts.yml",)) as server:
            def value(expr: str) -> float | None:
                result = server.query(expr)["data"]["result"]
                return float(result[0]["value"][1]) if result else None

            wait_for(lambda: value("count(up == 1)") == len(EVERY_SERVICE), 30,
                     "every service scraped", server)
            assert value('sum(iuran_service_ready{service=~"validator|ledger|projector|api"})') \
                == len(EVERY_SERVICE)
            assert value('sum(iuran_events_consumed_total{service="validator"})') >= 25
            assert value("sum(iuran_contributions_booked_total)") >= 25 * 12
            assert value("sum(iuran_registrations_accepted_total)") >= 25
            assert value('iuran_budget_allocated_idr{programme="malang-2025"}') \
                == 5_300_000_000
            assert value("sum(iuran_ledger_write_seconds_count)") >= 1
            assert value("count(process_resident_memory_bytes)") == len(EVERY_SERVICE)
            wait_for(lambda: value('iuran_active_workers{programme="malang-2025"}'), 30,
                     "the projector's active workers", server)
            assert value('iuran_active_workers{programme="malang-2025"}') >= 25

    await asyncio.to_thread(check)
