"""The topics that carry personal data are created with a bounded retention; the others
keep the broker's own."""

from __future__ import annotations

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from services.runtime.kafka import ALL_TOPICS, DAY_MS, PERSONAL_DATA_TOPICS, client_options
from services.runtime.settings import Settings

pytestmark = pytest.mark.integration


async def test_personal_data_topics_are_created_with_bounded_retention(
    settings: Settings,
) -> None:
    admin = AIOKafkaAdminClient(**client_options(settings))
    await admin.start()
    try:
        answers = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, name) for name in ALL_TOPICS])
    finally:
        await admin.close()
    retention: dict[str, str | None] = {name: None for name in ALL_TOPICS}
    for answer in answers:
        for resource in answer.resources:
            name, entries = resource[3], resource[4]
            for entry in entries:
                if entry[0] == "retention.ms":
                    retention[name] = entry[1]
    wanted = str(settings.kafka_personal_data_retention_days * DAY_MS)
    assert {n: retention[n] for n in PERSONAL_DATA_TOPICS} == {
        n: wanted for n in PERSONAL_DATA_TOPICS}
    assert int(wanted) <= 365 * DAY_MS
    assert all(retention[n] != wanted for n in set(ALL_TOPICS) - PERSONAL_DATA_TOPICS)
