"""Consumer lag as any Kafka client sees it: for every consumer group, the partitions' high
watermarks minus the offsets the group committed, summed per topic.

The high watermark comes from a fetch response: the embedded broker answers
ListOffsets(latest) with the last batch's base offset + 1, so the bench seeks to that offset
and fetches, which returns the true high watermark (Kafka answers both alike). Nothing here
knows the services' group names: every group that committed offsets on a topic is reported.

The committed offsets are asked for partition by partition: the embedded broker's answer to
OffsetFetch for "all partitions" (no topics in the request) does not decode in aiokafka 0.14
(the connection closes with "unpack requires a buffer of 4 bytes").
"""

from __future__ import annotations

import contextlib
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from services.runtime.kafka import client_options
from services.runtime.settings import Settings


class LagProbe:
    def __init__(self, settings: Settings, topics: list[str]) -> None:
        self.settings = settings
        self.topics = topics
        self._admin = AIOKafkaAdminClient(**client_options(settings))
        self._consumer = AIOKafkaConsumer(**client_options(settings), group_id=None,
                                          enable_auto_commit=False, fetch_max_wait_ms=20)
        self._partitions: list[TopicPartition] = []

    async def __aenter__(self) -> LagProbe:
        await self._admin.start()
        await self._consumer.start()
        await self._consumer.topics()  # metadata of every topic
        for topic in self.topics:
            found = self._consumer.partitions_for_topic(topic) or set()
            self._partitions += [TopicPartition(topic, p) for p in sorted(found)]
        self._consumer.assign(self._partitions)
        self._consumer.pause(*self._partitions)  # fetch only while sampling
        return self

    async def __aexit__(self, *_: object) -> None:
        await self._consumer.stop()
        await self._admin.close()

    async def high_watermarks(self) -> dict[TopicPartition, int]:
        listed = await self._consumer.end_offsets(self._partitions)
        for tp, end in listed.items():
            self._consumer.seek(tp, max(end - 1, 0))
        self._consumer.resume(*self._partitions)
        try:
            await self._consumer.getmany(timeout_ms=300)
        finally:
            self._consumer.pause(*self._partitions)
        marks = {}
        for tp, end in listed.items():
            seen = self._consumer.highwater(tp)
            marks[tp] = max(end, seen if seen is not None else 0)
        return marks

    async def sample(self) -> dict[str, dict[str, int]]:
        """{group: {topic: messages behind}} for every group with offsets on our topics."""
        marks = await self.high_watermarks()
        lag: dict[str, dict[str, int]] = {}
        for group in await self._groups():
            with contextlib.suppress(KafkaError):
                committed = await self._admin.list_consumer_group_offsets(
                    group, partitions=self._partitions)
                for tp, meta in committed.items():
                    if tp in marks and meta.offset >= 0:
                        per_topic = lag.setdefault(group, {})
                        per_topic[tp.topic] = (per_topic.get(tp.topic, 0)
                                               + max(marks[tp] - meta.offset, 0))
        return lag

    async def published(self) -> dict[str, int]:
        """Messages on each topic so far (the sum of its high watermarks)."""
        totals: dict[str, int] = {}
        for tp, mark in (await self.high_watermarks()).items():
            totals[tp.topic] = totals.get(tp.topic, 0) + mark
        return totals

    async def _groups(self) -> list[str]:
        listed: list[Any] = await self._admin.list_consumer_groups()
        return sorted(str(entry[0]) for entry in listed)


def caught_up(lag: dict[str, dict[str, int]], topics: list[str]) -> bool:
    """Every topic has a group that committed on it, and no group is behind on any."""
    consumed = {topic for per_topic in lag.values() for topic in per_topic}
    return set(topics) <= consumed and all(
        behind == 0 for per_topic in lag.values() for behind in per_topic.values())
