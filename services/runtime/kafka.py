"""Kafka adapters: client options from settings (security included) and topic creation."""

from __future__ import annotations

import asyncio
import logging
import ssl
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError

from schemas.events import (
    TOPIC_CONTRIBUTIONS,
    TOPIC_COVERAGE,
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
    TOPIC_COVERAGE,
)


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
    """Create the contract's topics with the configured partitions (existing ones are kept)."""
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
            NewTopic(name, settings.partitions, settings.replication_factor)
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
