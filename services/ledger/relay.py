"""The outbox relay: send the rows of ``ledger.outbox`` to iuran.ledger.v1, then mark them.

One pass, in one transaction: take the unpublished rows in id order (at most
:data:`BATCH_ROWS`, ``FOR UPDATE SKIP LOCKED`` so that two ledger processes never send one row
both), send each keyed by its programme, await every delivery, mark them published, commit.
Ids come from a sequence and commit out of order, so no position ("published up to N") is
kept: a row that commits late is still unpublished, and the next pass takes it. A crash (or
a failed commit) between the deliveries and the mark sends those rows again: consumers apply
each ``outbox_id`` once.

The ledger process wakes the relay right after each batch it commits, and the relay looks
on its own every :data:`POLL_SECONDS` (rows written by other processes: a budget raise from
the CLI, a settlement resolved by finance). A row is thus sent within POLL_SECONDS of its
commit plus one delivery, while the broker and PostgreSQL are up; while either is away the
rows wait in the outbox and go as soon as both are back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime

import asyncpg
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from schemas.events import TOPIC_LEDGER
from services.runtime import metrics
from services.runtime.database import RETRYABLE

log = logging.getLogger(__name__)

POLL_SECONDS = 0.2  # the longest a committed row waits for the relay to look
BATCH_ROWS = 20  # rows sent per pass (each at most 512 KiB: at most 10 MiB in memory)
SEND_TIMEOUT_SECONDS = 30.0  # a delivery that takes longer is given up and sent again
RETRY_SECONDS = 1.0  # after a failed pass (broker or PostgreSQL away)

TAKE = """
SELECT outbox_id, programme, event, recorded_at
  FROM ledger.outbox
 WHERE published_at IS NULL
 ORDER BY outbox_id
 LIMIT $1
   FOR UPDATE SKIP LOCKED
"""

MARK = "UPDATE ledger.outbox SET published_at = now() WHERE outbox_id = ANY($1::bigint[])"


async def relay_once(connection: asyncpg.Connection, producer: AIOKafkaProducer,
                     limit: int = BATCH_ROWS) -> int:
    """Send and mark at most ``limit`` unpublished rows; the number sent."""
    async with connection.transaction():
        rows = await connection.fetch(TAKE, limit)
        if not rows:
            return 0
        futures = [await producer.send(TOPIC_LEDGER, key=r["programme"].encode(),
                                       value=r["event"].encode()) for r in rows]
        await asyncio.wait_for(asyncio.gather(*futures), SEND_TIMEOUT_SECONDS)
        await connection.execute(MARK, [r["outbox_id"] for r in rows])
    now = datetime.now(UTC)
    metrics.OUTBOX_PUBLISHED.inc(len(rows))
    for r in rows:
        metrics.OUTBOX_DELAY_SECONDS.observe(max((now - r["recorded_at"]).total_seconds(), 0))
    return len(rows)


class Relay:
    """The relay task of a ledger process: :meth:`run` until cancelled; :meth:`wake` after
    a commit that wrote outbox rows."""

    def __init__(self, database_url: str, producer: AIOKafkaProducer) -> None:
        self._url = database_url
        self._producer = producer
        self._wake = asyncio.Event()

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        connection: asyncpg.Connection | None = None
        try:
            while True:
                self._wake.clear()
                try:
                    if connection is None or connection.is_closed():
                        connection = await asyncpg.connect(self._url)
                    while await relay_once(connection, self._producer) == BATCH_ROWS:
                        pass
                except (*RETRYABLE, asyncpg.PostgresError, KafkaError, TimeoutError) as exc:
                    log.warning("outbox rows not relayed (%s); trying again in %.1fs",
                                type(exc).__name__, RETRY_SECONDS)
                    if connection is not None:
                        await _close(connection)
                    connection = None
                    await asyncio.sleep(RETRY_SECONDS)
                    continue
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), POLL_SECONDS)
        finally:
            if connection is not None:
                await _close(connection)


async def _close(connection: asyncpg.Connection) -> None:
    with contextlib.suppress(Exception):
        await asyncio.wait_for(connection.close(), 5)
