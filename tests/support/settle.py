"""Positive conditions for "nothing (more) happened": instead of sleeping a while before
asserting that nothing was doubled or published, wait until the services have committed
their consumer offsets past everything published so far, or read a topic to its end."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from schemas.events import TOPIC_CONTRIBUTIONS, TOPIC_LEDGER, TOPIC_PAYMENTS, TOPIC_REGISTRATIONS
from services.runtime.kafka import client_options
from services.runtime.settings import Settings
from tests.support.faults import GROUPS, end_offsets, wait_caught_up

# The pipeline in order: each stage's input topic holds what the stage before it sent.
PIPELINE_STAGES = (
    (GROUPS["validator"], TOPIC_REGISTRATIONS),
    (GROUPS["ledger"], TOPIC_CONTRIBUTIONS),
    (GROUPS["projector"], TOPIC_LEDGER),
)
PAYMENTS_STAGE = ((GROUPS["ledger"], TOPIC_PAYMENTS),)


async def handled(settings: Settings, stages: Sequence[tuple[str, str]] = PIPELINE_STAGES,
                  *, within: float = 90.0) -> None:
    """Wait until each (group, topic), in order, committed up to the topic's end, so that
    every event published before the call went through every stage (a service commits an
    offset only after its outputs for it were sent or written)."""
    for group, topic in stages:
        lags = await wait_caught_up(settings, [(group, topic)], within=within)
        assert not any(lags.values()), f"{group} never caught up on {topic}: {lags}"


async def read_to_end(settings: Settings, topic: str, keep: Callable[[ConsumerRecord], bool],
                      *, within: float = 60.0) -> list[ConsumerRecord]:
    """Every record of ``topic`` up to its end (as it is at the call) that passes ``keep``."""
    deadline = time.monotonic() + within
    ends = await end_offsets(settings, topic)
    wanted = [TopicPartition(topic, p) for p, end in ends.items() if end > 0]
    if not wanted:
        return []
    consumer = AIOKafkaConsumer(**client_options(settings), group_id=None,
                                enable_auto_commit=False)
    await consumer.start()
    found: list[ConsumerRecord] = []
    try:
        consumer.assign(wanted)
        await consumer.seek_to_beginning(*wanted)
        remaining = set(wanted)
        while remaining:
            assert time.monotonic() < deadline, f"{topic} was not read to its end in time"
            for tp, records in (await consumer.getmany(timeout_ms=500)).items():
                found.extend(r for r in records if keep(r))
                if await consumer.position(tp) >= ends[tp.partition]:
                    remaining.discard(tp)
        return found
    finally:
        await consumer.stop()
