"""Dead letters: records a service cannot process for a reason other than a transient outage.

Kept as Kafka Connect keeps them (``errors.tolerance=all``): the original bytes untouched,
the source topic/partition/offset, a stable reason code and the exception seen, in
``ledger.dead_letters`` (listed by finance in ``finance.dead_letters`` and by
``iuran deadletter list``). The caller then commits the record's offset: one bad record
never stops a stream, and it still ends somewhere a person can see it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg

from services.runtime import metrics

log = logging.getLogger(__name__)

_INSERT = """
INSERT INTO ledger.dead_letters (service, topic, partition, "offset", key, value, reason,
                                 detail)
SELECT * FROM unnest($1::text[], $2::text[], $3::integer[], $4::bigint[], $5::bytea[],
                     $6::bytea[], $7::text[], $8::text[])
ON CONFLICT (service, topic, partition, "offset") DO NOTHING
RETURNING service, topic, partition, "offset", reason
"""


@dataclass(frozen=True, slots=True)
class DeadLetter:
    service: str
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    reason: str  # a stable code, e.g. "out_of_range"
    detail: str  # what was seen (exception class and message), for a person


async def record_dead_letters(
    connection: asyncpg.Connection, letters: Sequence[DeadLetter]
) -> int:
    """Insert the dead letters (a replay records nothing twice), count and log each new one
    (topic/partition/offset/reason, never the value). Returns how many were new."""
    if not letters:
        return 0
    rows = await connection.fetch(
        _INSERT,
        [d.service for d in letters], [d.topic for d in letters],
        [d.partition for d in letters], [d.offset for d in letters],
        [d.key for d in letters], [d.value for d in letters],
        [d.reason for d in letters], [d.detail.replace("\x00", "\\0") for d in letters],
    )
    for row in rows:
        metrics.DEAD_LETTERS.labels(row["service"], row["topic"], row["reason"]).inc()
        log.error(
            "dead letter recorded: %s %s[%d]@%d reason=%s", row["service"], row["topic"],
            row["partition"], row["offset"], row["reason"],
            extra={"service": row["service"], "topic": row["topic"],
                   "partition": row["partition"], "offset": row["offset"],
                   "code": row["reason"]},
        )
    return len(rows)
