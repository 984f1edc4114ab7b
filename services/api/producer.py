"""The registration gateway's Kafka producer: started by the API's lifespan (retried while
the broker is away), idempotent and acks=all; ``publish`` returns once every message is
acknowledged by the broker."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from fastapi import HTTPException

from schemas.events import TOPIC_REGISTRATIONS
from services.runtime.kafka import client_options, ensure_topics
from services.runtime.retry import until_done
from services.runtime.settings import Settings

log = logging.getLogger(__name__)


class Gateway:
    """One producer per API process, keyed by NIK (the contract's key)."""

    def __init__(self, settings: Settings, topic: str = TOPIC_REGISTRATIONS, *,
                 timeout_ms: int = 15_000) -> None:
        self.settings = settings
        self.topic = topic
        self.timeout_ms = timeout_ms  # how long a request waits for the broker before a 503
        self.producer: AIOKafkaProducer | None = None
        self.detail = "Kafka not connected yet"

    async def connect_forever(self) -> None:
        """Start the producer, waiting out the broker (shared backoff) until it answers."""

        async def attempt() -> AIOKafkaProducer:
            producer = AIOKafkaProducer(**client_options(self.settings), acks="all",
                                        linger_ms=5, request_timeout_ms=self.timeout_ms)
            try:
                await ensure_topics(self.settings, (self.topic,))
                await producer.start()
            except (KafkaError, OSError) as exc:
                await producer.stop()
                self.detail = f"Kafka unreachable ({type(exc).__name__})"
                raise
            return producer

        def waiting(_: BaseException, delay: float) -> None:
            log.warning("%s; retrying in %.1fs", self.detail, delay)

        self.producer = await until_done(attempt, (KafkaError, OSError), on_retry=waiting,
                                         first=0.5)
        self.detail = "ok"

    def require(self) -> AIOKafkaProducer:
        if self.producer is None:
            raise HTTPException(503, detail=self.detail)
        return self.producer

    async def publish(self, messages: Sequence[tuple[bytes, bytes]]) -> None:
        """Send (key, value) pairs and wait for every acknowledgement; KafkaError if the
        broker refused or lost one (the caller answers 503 and the retry re-sends)."""
        producer = self.require()
        pending = [await producer.send(self.topic, value=value, key=key)
                   for key, value in messages]
        await asyncio.gather(*pending)

    async def close(self) -> None:
        if self.producer is not None:
            await self.producer.stop()
            self.producer = None
