"""End offsets of a partition, as table recovery and lag need them, on the real broker."""

from __future__ import annotations

import uuid

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from services.runtime.kafka import client_options, publish_all
from services.runtime.patches import true_highwaters
from services.runtime.settings import Settings


async def test_true_highwaters_count_every_record_of_the_last_batch(settings: Settings) -> None:
    topic = f"offsets-{uuid.uuid4().hex[:8]}"
    options = client_options(settings)
    admin = AIOKafkaAdminClient(**options)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, 2, 1)])
    finally:
        await admin.close()
    # 120 records in a few large batches, all to partition 0 (same key), none to partition 1
    await publish_all(settings, topic, ((b"same-key", f"{i}".encode()) for i in range(120)))
    consumer = AIOKafkaConsumer(**options, group_id=None)
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, 0), TopicPartition(topic, 1)]
        listed = await consumer.end_offsets(partitions)
    finally:
        await consumer.stop()
    confirmed = await true_highwaters(options, dict(listed))
    loaded = next(tp for tp in partitions if confirmed[tp] > 0)
    empty = next(tp for tp in partitions if tp != loaded)
    assert confirmed[loaded] == 120
    assert confirmed[empty] == 0
    assert listed[loaded] <= 120  # what the broker's ListOffsets said (wrong on Tansu)
