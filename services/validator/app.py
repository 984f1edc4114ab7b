"""The validator's Faust app: one agent over the registrations topic.

The per-NIK enrolment state lives in PostgreSQL (registry.worker_state), not in a Faust
table, so it survives the in-memory broker and does not depend on the publisher's
partitioner. Per batch of messages (``noack_take``, so that nothing is acked before it is
done): one PostgreSQL transaction decides them (services.validator.registry); then the
schedules and rejections are sent and their delivery awaited; only then are the batch's
events acked, so Faust never commits an offset past an unsent output. A crash between the
commit and the sends is healed by the redelivery: an event already decided re-emits
identical outputs.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Sequence
from typing import Any

import asyncpg
import faust

from schemas.events import TOPIC_CONTRIBUTIONS, TOPIC_REGISTRATIONS, TOPIC_REJECTED
from services.domain.enrolment import WorkerState
from services.domain.programme import Programme
from services.ledger.migrate import SchemaNotMigrated, require_migrated, unmigrated
from services.runtime import metrics
from services.runtime.database import RETRYABLE, connect_with_retry
from services.runtime.faust_worker import broker_credentials, create_faust_app
from services.runtime.lag import Positions, install_faust_lag
from services.runtime.retry import until_done
from services.runtime.settings import Settings
from services.validator import registry
from services.validator.process import Incoming, Outcome, Source, decide_message, read_message

log = logging.getLogger(__name__)

APP_ID = "iuran-validator"
__all__ = ["APP_ID", "Health", "broker_credentials", "create_app"]

MAX_BACKOFF_SECONDS = 5.0


SCHEMA_CHECK_SECONDS = 2.0


class Health:
    """The validator's own readiness: false until the ledger schema is migrated, and while a
    batch waits for PostgreSQL or for the broker to take its outputs."""

    def __init__(self) -> None:
        self.waiting_for: str | None = None
        self.schema: str | None = None  # why the schema is not usable yet

    def __call__(self) -> tuple[bool, str]:
        if self.schema is not None:
            return False, self.schema
        if self.waiting_for is not None:
            return False, f"waiting for {self.waiting_for}"
        return True, "ok"


class Validator:
    """Decides batches in PostgreSQL and delivers their outputs."""

    def __init__(self, settings: Settings, programmes: dict[str, Programme],
                 contributions: faust.TopicT, rejected: faust.TopicT, health: Health) -> None:
        self._url = settings.database_url or ""
        self._programmes = programmes
        self._contributions = contributions
        self._rejected = rejected
        self._health = health
        self._connection: asyncpg.Connection | None = None

    def _decide(self, incoming: Incoming, state: WorkerState) -> Outcome:
        return decide_message(incoming, state, self._programmes)

    async def _connect(self) -> asyncpg.Connection:
        if self._connection is None or self._connection.is_closed():
            self._connection = await connect_with_retry(self._url, init=_prepared,
                                                        on_wait=self._on_database)
            self._health.schema = None
        return self._connection

    async def wait_for_schema(self) -> None:
        """From the start: not ready until the schema is at the version this code needs."""
        self._health.schema = "schema not checked yet"
        connection = await connect_with_retry(self._url, on_wait=self._on_database)
        try:
            while (reason := await unmigrated(connection)) is not None:
                if self._health.schema != reason:
                    log.warning("waiting: %s", reason)
                self._health.schema = reason
                await asyncio.sleep(SCHEMA_CHECK_SECONDS)
        finally:
            await connection.close()
        self._health.schema = None

    def _on_database(self, ok: bool) -> None:
        self._health.waiting_for = None if ok else "PostgreSQL"

    async def handle(self, events: Sequence[faust.types.EventT[Any]]) -> None:
        """Decide and deliver one batch; returns only when every output is delivered."""
        started = time.perf_counter()
        batch = []
        for event in events:
            message = event.message
            batch.append(read_message(message.key, message.value,
                                      Source(message.topic, message.partition,
                                             message.offset)))
        for topic, count in Counter(i.source.topic for i in batch).items():
            metrics.EVENTS_CONSUMED.labels("validator", topic).inc(count)
        outcomes = await self._decide_until_done(batch)
        await self._deliver(outcomes)
        _count(outcomes)
        log.debug("validator batch of %d decided and delivered in %.3fs", len(batch),
                  time.perf_counter() - started)

    async def _decide_until_done(self, batch: list[Incoming]) -> list[Outcome]:
        split = False

        async def attempt() -> list[Outcome]:
            nonlocal split
            try:
                connection = await self._connect()
            except SchemaNotMigrated as exc:  # wait, not ready, until `iuran migrate` ran
                self._connection = None
                self._health.schema = str(exc)
                raise _Wait(str(exc), "PostgreSQL", logging.WARNING) from exc
            except Exception as exc:  # e.g. a seed that cannot run yet: wait, not ready
                self._connection = None
                raise _Wait("cannot prepare PostgreSQL", "PostgreSQL", logging.ERROR) from exc
            try:
                if split:
                    outcomes = [await registry.decide_alone(connection, i, self._decide)
                                for i in batch]
                else:
                    outcomes = await registry.decide_batch(connection, batch, self._decide)
            except RETRYABLE as exc:
                if self._connection is not None and not self._connection.is_closed():
                    await self._connection.close()
                self._connection = None
                raise _Wait("PostgreSQL failed deciding a batch", "PostgreSQL",
                            logging.WARNING) from exc
            except Exception as exc:  # refused for a reason of one of its messages
                if split:  # even a dead letter could not be written: wait, not ready
                    raise _Wait("the validator cannot record a failed message", "PostgreSQL",
                                logging.ERROR, trace=True) from exc
                log.error("a batch failed (%s); deciding its messages one by one",
                          type(exc).__name__)
                split = True
                return await attempt()
            self._health.waiting_for = self._health.schema = None
            return outcomes

        return await until_done(attempt, (_Wait,), on_retry=self._waiting,
                                max_delay=MAX_BACKOFF_SECONDS)

    async def _deliver(self, outcomes: list[Outcome]) -> None:
        """Send every output in order and wait until the broker has taken each one. After
        a failure everything from the first failed output on is sent again, in order
        (sinks ignore a repeat; the order of one NIK's outputs is kept)."""
        pending = [(self._rejected if rejected else self._contributions, key, value)
                   for rejected, key, value in encode_outputs(outcomes)]
        if not pending:
            return

        async def attempt() -> None:
            nonlocal pending
            futures: list[Any] = []
            failed_at: int | None = None
            error: BaseException | None = None
            for index, (topic, key, value) in enumerate(pending):
                try:
                    futures.append(await topic.send(key=key, value=value))
                except Exception as exc:  # the producer refused it: the broker is away
                    failed_at, error = index, exc
                    break
            results = await asyncio.gather(*futures, return_exceptions=True)
            for index, result in enumerate(results):
                if isinstance(result, Exception):
                    failed_at, error = index, result
                    break
            if failed_at is None:
                self._health.waiting_for = None
                return
            undelivered = len(pending) - failed_at
            pending = pending[failed_at:]
            raise _Wait(f"{undelivered} outputs of a batch not delivered", "the broker",
                        logging.WARNING, again="sending them again") from error

        await until_done(attempt, (_Wait,), on_retry=self._waiting,
                         max_delay=MAX_BACKOFF_SECONDS)

    def _waiting(self, exc: BaseException, delay: float) -> None:
        """Before each backoff wait: not ready, and one log line saying why."""
        if not isinstance(exc, _Wait):
            return
        self._health.waiting_for = exc.on
        log.log(exc.level, "%s (%s); %s in %.1fs", exc.what, type(exc.__cause__).__name__,
                exc.again, delay, exc_info=exc.__cause__ if exc.trace else None)


class _Wait(Exception):
    """A batch that must wait (backoff) for ``on`` before it is tried again."""

    def __init__(self, what: str, on: str, level: int, *, trace: bool = False,
                 again: str = "retrying") -> None:
        super().__init__(what)
        self.what, self.on, self.level, self.trace, self.again = what, on, level, trace, again


async def _prepared(connection: asyncpg.Connection) -> None:
    """A connection ready to decide: the schema migrated."""
    await require_migrated(connection)


def encode_outputs(outcomes: list[Outcome]) -> list[tuple[bool, bytes | None, bytes]]:
    """(rejected?, key, value) of every output of a batch, in order, each encoded once."""
    found: list[tuple[bool, bytes | None, bytes]] = []
    for outcome in outcomes:
        key = outcome.incoming.key
        for schedule in outcome.schedules:
            found.append((False, key, schedule.model_dump_json().encode()))
        if outcome.rejected is not None:
            found.append((True, key, outcome.rejected.model_dump_json().encode()))
    return found


def _count(outcomes: list[Outcome]) -> None:
    """The batch's metrics, one update per label; a log line per rejection."""
    schedules: Counter[str] = Counter()
    accepted: Counter[tuple[str, str]] = Counter()
    warnings: Counter[str] = Counter()
    rejected: Counter[str] = Counter()
    duplicates = 0
    for outcome in outcomes:
        for schedule in outcome.schedules:
            schedules[schedule.kind] += 1
        if outcome.schedules and not outcome.duplicate_event:
            accepted[(outcome.programme, outcome.event_type)] += 1
        for warning in outcome.warnings:
            warnings[warning.code] += 1
        if outcome.duplicate_event:
            duplicates += 1
        if outcome.rejected is not None:
            for item in outcome.rejected.errors:
                rejected[item.code] += 1
            source = outcome.incoming.source
            log.info("registration rejected: %s", outcome.rejected.errors[0].code,
                     extra={"topic": source.topic, "partition": source.partition,
                            "offset": source.offset, "code": outcome.rejected.errors[0].code})
    for kind, count in schedules.items():
        metrics.SCHEDULES_EMITTED.labels(kind).inc(count)
    for (programme, event_type), count in accepted.items():
        metrics.REGISTRATIONS_ACCEPTED.labels(programme, event_type).inc(count)
    for code, count in warnings.items():
        metrics.REGISTRATION_WARNINGS.labels(code).inc(count)
    if duplicates:
        metrics.REGISTRATIONS_DUPLICATE_EVENTS.inc(duplicates)
    for code, count in rejected.items():
        metrics.REGISTRATIONS_REJECTED.labels(code).inc(count)


def create_app(settings: Settings, programmes: dict[str, Programme],
               health: Health | None = None) -> faust.App:
    app = create_faust_app(APP_ID, settings, "validator")
    registrations = app.topic(TOPIC_REGISTRATIONS, key_type=bytes, value_type=bytes,
                              partitions=settings.partitions)
    contributions = app.topic(TOPIC_CONTRIBUTIONS, key_type=bytes, value_type=bytes,
                              partitions=settings.partitions)
    rejected = app.topic(TOPIC_REJECTED, key_type=bytes, value_type=bytes,
                         partitions=settings.partitions)
    validator = Validator(settings, programmes, contributions, rejected, health or Health())

    positions = Positions("validator", lambda: app.consumer.assignment())

    @app.task  # type: ignore[untyped-decorator]  # faust types it loosely
    async def check_schema() -> None:
        if settings.database_url:
            await validator.wait_for_schema()

    @app.agent(registrations, name="validate")
    async def validate(stream: faust.StreamT[bytes]) -> None:
        # noack_take: events are acked below, after their outputs are delivered (take()
        # acks a batch as soon as the loop asks for the next one, even after an exception).
        within = settings.validator_batch_wait_ms / 1000
        batches = stream.noack_take(  # type: ignore[attr-defined]  # Stream has it, StreamT not
            settings.validator_batch_max, within=within)
        async for events in batches:
            for event in events:
                positions.took(event.message.tp, event.message.offset)
            await validator.handle(events)
            for event in events:
                await stream.ack(event)

    install_faust_lag(app, "validator", [TOPIC_REGISTRATIONS])
    return app
