"""Kafka adapters: client options from settings (security included) and topic creation."""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable, Iterable
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError

from schemas.events import (
    TOPIC_BPJS_BILLS,
    TOPIC_BPJS_VERIFICATIONS,
    TOPIC_CONTRIBUTIONS,
    TOPIC_COVERAGE,
    TOPIC_LEDGER,
    TOPIC_PAYMENTS,
    TOPIC_REGISTRATIONS,
    TOPIC_REJECTED,
)
from services.runtime.settings import Settings

log = logging.getLogger(__name__)

ALL_TOPICS = (
    TOPIC_REGISTRATIONS,
    TOPIC_REJECTED,
    TOPIC_CONTRIBUTIONS,
    TOPIC_PAYMENTS,
    TOPIC_LEDGER,
    TOPIC_COVERAGE,
    TOPIC_BPJS_VERIFICATIONS,
    TOPIC_BPJS_BILLS,
)
# Topics whose records carry personal data (names, birth dates, phones, addresses, NIKs):
# created with a bounded retention (IURAN_KAFKA_PERSONAL_DATA_RETENTION_DAYS).
PERSONAL_DATA_TOPICS = frozenset({TOPIC_REGISTRATIONS, TOPIC_REJECTED, TOPIC_CONTRIBUTIONS,
                                  TOPIC_BPJS_VERIFICATIONS, TOPIC_BPJS_BILLS})
DAY_MS = 86_400_000


def topic_configs(settings: Settings, name: str) -> dict[str, str]:
    """The configuration a topic is created with."""
    if name in PERSONAL_DATA_TOPICS:
        return {"retention.ms": str(settings.kafka_personal_data_retention_days * DAY_MS)}
    return {}


def client_options(settings: Settings) -> dict[str, Any]:
    """Connection and security options shared by every aiokafka client."""
    if not settings.kafka_bootstrap:
        raise ValueError("IURAN_KAFKA_BOOTSTRAP is not set and no embedded broker runs")
    options: dict[str, Any] = {
        "bootstrap_servers": settings.kafka_bootstrap,
        "security_protocol": settings.kafka_security_protocol,
    }
    if settings.kafka_security_protocol in ("SSL", "SASL_SSL"):
        context = ssl.create_default_context(
            cafile=str(settings.kafka_ssl_cafile) if settings.kafka_ssl_cafile else None
        )
        options["ssl_context"] = context
    if settings.kafka_security_protocol.startswith("SASL"):
        options["sasl_mechanism"] = settings.kafka_sasl_mechanism or "PLAIN"
        options["sasl_plain_username"] = settings.kafka_sasl_username
        options["sasl_plain_password"] = (
            settings.kafka_sasl_password.get_secret_value()
            if settings.kafka_sasl_password
            else None
        )
    return options


async def ensure_topics(settings: Settings, topics: tuple[str, ...] = ALL_TOPICS) -> None:
    """Create the contract's topics with the configured partitions, and those carrying
    personal data with a bounded retention (existing topics are kept as they are)."""
    admin = AIOKafkaAdminClient(**client_options(settings))
    for attempt in range(30):
        try:
            await admin.start()
            break
        except KafkaError as exc:
            if attempt == 29:
                raise
            log.info("waiting for Kafka at %s (%s)", settings.kafka_bootstrap, exc)
            await asyncio.sleep(1)
    try:
        existing = set(await admin.list_topics())
        wanted = [
            NewTopic(name, settings.partitions, settings.replication_factor,
                     topic_configs=topic_configs(settings, name))
            for name in topics
            if name not in existing
        ]
        if wanted:
            try:
                await admin.create_topics(wanted)
            except TopicAlreadyExistsError:
                pass
            log.info("created topics %s", ", ".join(t.name for t in wanted))
    finally:
        await admin.close()


async def publish_all(
    settings: Settings,
    topic: str,
    messages: Iterable[tuple[bytes | None, bytes]],
    *,
    on_progress: Callable[[int], None] | None = None,
    every: int = 5000,
) -> int:
    """Produce (key, value) messages in large batches and wait until the broker has them all.

    ``on_progress(count)`` is called every ``every`` messages once those are acknowledged.
    """
    producer = AIOKafkaProducer(**client_options(settings), linger_ms=10,
                                max_batch_size=512 * 1024, acks="all")
    await producer.start()
    count = 0
    try:
        pending = []
        for key, value in messages:
            pending.append(await producer.send(topic, key=key, value=value))
            count += 1
            if count % every == 0:
                await asyncio.gather(*pending)
                pending.clear()
                if on_progress is not None:
                    on_progress(count)
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return count
