"""Publish to and read from the real broker in tests."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord

from services.runtime.kafka import client_options
from services.runtime.settings import Settings


async def publish(settings: Settings, topic: str,
                  messages: Iterable[tuple[bytes | None, bytes]]) -> int:
    producer = AIOKafkaProducer(**client_options(settings), acks="all", linger_ms=5)
    await producer.start()
    count = 0
    try:
        futures = []
        for key, value in messages:
            futures.append(await producer.send(topic, key=key, value=value))
            count += 1
        await asyncio.gather(*futures)
    finally:
        await producer.stop()
    return count


async def collect(
    settings: Settings,
    topic: str,
    keep: Callable[[ConsumerRecord], bool],
    *,
    want: int,
    timeout: float = 60.0,
) -> list[ConsumerRecord]:
    """Read the topic from the beginning until ``want`` records pass ``keep`` (or time out)."""
    consumer = AIOKafkaConsumer(topic, **client_options(settings), group_id=None,
                                auto_offset_reset="earliest")
    await consumer.start()
    found: list[ConsumerRecord] = []
    deadline = time.monotonic() + timeout
    try:
        while len(found) < want and time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=250)
            for records in batches.values():
                found.extend(r for r in records if keep(r))
    finally:
        await consumer.stop()
    return found


def schedule_of(*event_ids: object) -> Callable[[ConsumerRecord], bool]:
    """A `collect` filter for the schedules of these registration events. The contributions topic
    is shared by the whole session and may hold records that are not schedules (a test puts
    a foreign record there on purpose): those are skipped, not fatal."""
    from pydantic import ValidationError

    from schemas.events import ContributionSchedule

    wanted = {str(e) for e in event_ids}

    def keep(record: ConsumerRecord) -> bool:
        try:
            schedule = ContributionSchedule.model_validate_json(record.value or b"")
        except ValidationError:
            return False
        return str(schedule.registration_event_id) in wanted

    return keep
