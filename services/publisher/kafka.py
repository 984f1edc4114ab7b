"""Publish registration events to Kafka: key = NIK, value = the event's JSON."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from schemas.events import TOPIC_REGISTRATIONS, WorkerRegistered
from services.runtime.kafka import client_options, ensure_topics
from services.runtime.settings import Settings

log = logging.getLogger(__name__)

BATCH = 500  # events in flight before waiting for the broker's acknowledgements


class PublishError(RuntimeError):
    """The broker could not be reached or refused events; ``sent`` were acknowledged."""

    def __init__(self, message: str, sent: int) -> None:
        super().__init__(message)
        self.sent = sent


def message_of(event: WorkerRegistered) -> tuple[bytes, bytes]:
    """The Kafka key and value of one registration."""
    return event.worker.nik.encode(), event.model_dump_json().encode()


async def publish_events(
    events: Sequence[WorkerRegistered],
    settings: Settings,
    *,
    on_sent: Callable[[int], None] | None = None,
    topic: str = TOPIC_REGISTRATIONS,
) -> int:
    """Send every event and wait until the broker acknowledged it; returns the count."""
    try:
        await ensure_topics(settings, (topic,))
    except KafkaError as exc:
        raise PublishError(f"cannot reach Kafka at {settings.kafka_bootstrap}: {exc}", 0) from exc
    sent = 0
    producer = AIOKafkaProducer(**client_options(settings), acks="all", linger_ms=20)
    try:
        await producer.start()
        for start in range(0, len(events), BATCH):
            chunk = events[start : start + BATCH]
            pending = []
            for event in chunk:
                key, value = message_of(event)
                pending.append(await producer.send(topic, value=value, key=key))
            await asyncio.gather(*pending)
            sent += len(chunk)
            if on_sent is not None:
                on_sent(sent)
    except KafkaError as exc:
        raise PublishError(f"Kafka at {settings.kafka_bootstrap} failed: {exc}", sent) from exc
    finally:
        await producer.stop()
    log.info("published %d registrations to %s", sent, topic)
    return sent
