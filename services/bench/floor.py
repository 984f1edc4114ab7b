"""The raw floor: a minimal aiokafka consumer that decodes the same contribution schedules
and writes their rows with asyncpg COPY — the best this stack can do, none of our logic."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Iterable
from datetime import date
from typing import Any

import asyncpg
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from services.bench.infra import Stack, cpu_delta, cpu_snapshot
from services.bench.workload import registrations, schedule_json
from services.runtime.kafka import client_options, publish_all
from services.runtime.settings import Settings

TOPIC = "bench.floor"

_COLUMNS = ("contribution_id", "nik", "period", "programme", "amount_idr", "jkk_idr",
            "jkm_idr", "due_date")


async def produce(settings: Settings, topic: str, messages: Iterable[tuple[bytes, bytes]]) -> int:
    admin = AIOKafkaAdminClient(**client_options(settings))
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, settings.partitions, 1)])
    finally:
        await admin.close()
    return await publish_all(settings, topic, messages, every=10_000)


async def consume_and_copy(settings: Settings, topic: str, expected_rows: int) -> dict[str, float]:
    """Read the topic from the start, decode each schedule, COPY its rows; time it all."""
    assert settings.database_url
    table = f"bench_floor_{uuid.uuid4().hex[:8]}"
    connection = await asyncpg.connect(settings.database_url)
    await connection.execute(
        f"CREATE TABLE {table} (contribution_id uuid, nik text, period text, programme text, "
        "amount_idr bigint, jkk_idr bigint, jkm_idr bigint, due_date date)")
    consumer = AIOKafkaConsumer(topic, **client_options(settings), group_id=None,
                                auto_offset_reset="earliest", max_poll_records=5000,
                                fetch_max_wait_ms=settings.kafka_fetch_max_wait_ms,
                                max_partition_fetch_bytes=8 * 1024 * 1024,
                                fetch_max_bytes=32 * 1024 * 1024)
    await consumer.start()
    rows_written = 0
    started = time.perf_counter()
    try:
        while rows_written < expected_rows:
            batches = await consumer.getmany(timeout_ms=200, max_records=5000)
            rows = []
            for records in batches.values():
                for record in records:
                    schedule = json.loads(record.value)
                    for c in schedule["contributions"]:
                        rows.append((
                            uuid.UUID(c["contribution_id"]), schedule["nik"], c["period"],
                            schedule["programme"], c["amount_idr"], c["components"]["jkk"],
                            c["components"]["jkm"],
                            date.fromisoformat(c["due_date"]),
                        ))
            if rows:
                await connection.copy_records_to_table(table, records=rows, columns=_COLUMNS)
                rows_written += len(rows)
        seconds = time.perf_counter() - started
    finally:
        await consumer.stop()
        await connection.execute(f"DROP TABLE {table}")
        await connection.close()
    return {"rows": rows_written, "seconds": round(seconds, 3),
            "rows_per_second": round(rows_written / seconds, 1)}


def raw_floor(st: Stack, count: int) -> dict[str, Any]:
    """The schedules of ``count`` registrations put on a topic of their own first, then read
    and COPYed; timed (and its CPU counted) from the first read to the last row written."""
    messages = [(event.worker.nik.encode(), schedule_json(st.programme, event))
                for event in registrations(st.programme, 0, count, namespace="floor")]
    rows = sum(len(json.loads(value)["contributions"]) for _, value in messages)
    asyncio.run(produce(st.settings, TOPIC, messages))
    before = cpu_snapshot(st)
    result: dict[str, Any] = asyncio.run(consume_and_copy(st.settings, TOPIC, rows))
    cpu = cpu_delta(before, cpu_snapshot(st))
    result["cpu_seconds"] = cpu
    result["cpu_us_per_row"] = {name: round(seconds / rows * 1e6, 2)
                                for name, seconds in cpu.items()}
    return result
