"""The projector's consumer side: a batch of iuran.ledger.v1 records decoded, folded into the
coverage totals in one PostgreSQL transaction (services.projector.fold), retried until done.

A record that is not a v1 ledger event is kept as a dead letter (reason
``malformed_ledger_event``) and its offset acked with the batch. A batch the database refuses
for what its events hold (services.ledger.poison: a sum out of BIGINT range, say) is applied
event by event, and an event refused alone is kept as a dead letter with its reason and
counted as handled. Anything else that fails (PostgreSQL away, the schema not migrated yet)
is tried again with backoff, the projector not ready meanwhile: the batch is acked only once
its events are applied or set aside.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
from pydantic import ValidationError

from schemas.events import LedgerEvent
from services.ledger.poison import describe, poison_reason
from services.projector import fold
from services.runtime import metrics
from services.runtime.deadletter import DeadLetter, record_dead_letters
from services.runtime.retry import until_done

log = logging.getLogger(__name__)

SERVICE = "projector"
MALFORMED = "malformed_ledger_event"
MAX_BACKOFF_SECONDS = 5.0


class Applier:
    """Folds batches of ledger events; ``waiting_for`` says what a batch waits for."""

    def __init__(self, database_url: str) -> None:
        self._url = database_url
        self._connection: asyncpg.Connection | None = None
        self.waiting_for: str | None = None

    async def handle(self, records: Sequence[Any]) -> list[LedgerEvent]:
        """Apply a batch of Kafka messages (key, value, topic, partition, offset); returns
        the events applied now (not before)."""
        events: list[tuple[Any, LedgerEvent]] = []
        letters: list[DeadLetter] = []
        for m in records:
            try:
                events.append((m, LedgerEvent.model_validate_json(m.value or b"")))
            except ValidationError as exc:
                letters.append(_letter(m, MALFORMED,
                                       f"not a v1 ledger event: {exc.errors()[0]['type']}"))

        async def attempt() -> list[LedgerEvent]:
            connection = await self._connect()
            try:
                started = time.perf_counter()
                if letters:
                    await record_dead_letters(connection, letters)
                applied = await _apply(connection, events)
                metrics.COVERAGE_APPLY_SECONDS.observe(time.perf_counter() - started)
                return applied
            except BaseException:
                await self._discard()
                raise

        def retrying(exc: BaseException, delay: float) -> None:
            self.waiting_for = "PostgreSQL"
            log.warning("ledger events not applied (%s); retrying in %.1fs",
                        type(exc).__name__, delay)

        applied = await until_done(attempt, (Exception,), on_retry=retrying,
                                   max_delay=MAX_BACKOFF_SECONDS)
        self.waiting_for = None
        metrics.LEDGER_EVENTS_APPLIED.inc(len(applied))
        return applied

    async def _connect(self) -> asyncpg.Connection:
        if self._connection is None or self._connection.is_closed():
            self._connection = await asyncpg.connect(self._url, timeout=10)
        return self._connection

    async def _discard(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None and not connection.is_closed():
            try:
                await connection.close(timeout=5)
            except Exception:  # already broken: nothing to close
                connection.terminate()


@dataclass(frozen=True)
class OutboxRow:
    """An outbox row read straight from PostgreSQL, shaped as a Kafka message (a dead
    letter of it names ``ledger.outbox`` and the row's id)."""

    offset: int
    key: bytes
    value: bytes
    topic: str = "ledger.outbox"
    partition: int = 0


async def catch_up(connection: asyncpg.Connection, after: int,
                   grace: float) -> tuple[int, list[LedgerEvent]]:
    """Apply the outbox rows no delivery brought within ``grace`` seconds (see
    :func:`fold.stragglers`), setting aside those that cannot be applied; returns the
    ``after`` of the next call and the events applied."""
    swept, rows = await fold.stragglers(connection, after, grace)
    events = [(message, LedgerEvent.model_validate_json(message.value)) for message in (
        OutboxRow(r["outbox_id"], r["programme"].encode(), r["event"].encode()) for r in rows)]
    return swept, await _apply(connection, events)


async def _apply(connection: asyncpg.Connection,
                 events: list[tuple[Any, LedgerEvent]]) -> list[LedgerEvent]:
    """The batch in one transaction; when the database refuses it for what the events hold,
    event by event, setting aside those it refuses alone."""
    try:
        return await fold.apply(connection, [e for _, e in events])
    except Exception as exc:
        reason = poison_reason(exc)
        if reason is None or not events:
            raise
        if len(events) == 1:
            message, event = events[0]
            await fold.set_aside(connection, event.outbox_id,
                                 _letter(message, reason, describe(exc)))
            return []
    applied: list[LedgerEvent] = []
    for one in events:
        applied += await _apply(connection, [one])
    return applied


def _letter(message: Any, reason: str, detail: str) -> DeadLetter:
    return DeadLetter(service=SERVICE, topic=message.topic, partition=message.partition,
                      offset=message.offset, key=message.key, value=message.value,
                      reason=reason, detail=detail)
