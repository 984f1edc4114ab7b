"""The ledger process: consume contribution schedules and payment confirmations, book them
in Postgres, then commit.

Offsets are committed only after the Postgres transaction has committed, and every write is
idempotent, so a crash, a replay or a rebalance books nothing twice and loses nothing. On
start the ledger waits until the schema is migrated (``iuran migrate``; not ready meanwhile),
creates or raises the budget allocations from the programme files (with a recorded change)
and books the held contributions that now fit.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.errors import CommitFailedError, KafkaError
from pydantic import BaseModel, ValidationError

from schemas.events import (
    TOPIC_BPJS_BILLS,
    TOPIC_BPJS_VERIFICATIONS,
    TOPIC_CONTRIBUTIONS,
    TOPIC_PAYMENTS,
    TOPIC_REJECTED,
    BpjsBill,
    BpjsVerification,
    ContributionSchedule,
    PaymentConfirmed,
    RejectionError,
)
from services.domain.errors import rejected_event
from services.domain.programme import load_programmes
from services.ledger import book, bpjs_bills, bpjs_verdicts, payment_intake, payments, poison
from services.ledger.bills import record_billing
from services.ledger.budget import ensure_allocation
from services.ledger.cover import record_time_zone
from services.ledger.migrate import unmigrated
from services.ledger.relay import Relay
from services.ledger.report import refresh_gauges, refresh_missing_at_bpjs_gauge
from services.runtime import metrics
from services.runtime.database import RETRYABLE, connect_with_retry
from services.runtime.deadletter import DeadLetter, record_dead_letters
from services.runtime.kafka import client_options, ensure_topics
from services.runtime.lag import Positions, publish_lag
from services.runtime.retry import until_done
from services.runtime.service import Service
from services.runtime.settings import Settings

log = logging.getLogger(__name__)

GROUP_ID = "iuran-ledger"
T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)
GAUGE_INTERVAL_SECONDS = 10.0
# Whose cover ends within 1-3 months changes with the month and with renewals: a scan of
# finance.cover_expiry every five minutes is enough, and keeps it off most batches.
COVER_GAUGE_INTERVAL_SECONDS = 300.0
# At most this often the count of months BPJS did not bill, after a BPJS bill arrived.
MISSING_GAUGE_INTERVAL_SECONDS = 60.0
SCHEMA_CHECK_SECONDS = 2.0


class LedgerService(Service):
    name = "ledger"

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self._connection: asyncpg.Connection | None = None
        self._consumer: AIOKafkaConsumer | None = None
        self._producer: AIOKafkaProducer | None = None
        self._db_ok = False
        self._schema: str | None = "schema not checked yet"
        self._committed: dict[TopicPartition, int] = {}
        self._gauges_at = 0.0
        self._cover_gauge_at = -COVER_GAUGE_INTERVAL_SECONDS
        self._missing_gauge_at = -MISSING_GAUGE_INTERVAL_SECONDS
        self._missing_due = False
        self._payment_bounds: dict[str, int] = {}
        self._positions = Positions(
            self.name, lambda: self._consumer.assignment() if self._consumer else ())
        self._relay: Relay | None = None  # sends what the ledger committed (its outbox)

    def readiness(self) -> tuple[bool, str]:
        if not self._db_ok:
            return False, "PostgreSQL unreachable"
        if self._schema is not None:
            return False, self._schema
        if self._consumer is None:
            return False, "Kafka consumer not started"
        return True, "ok"

    def _set_db_ok(self, ok: bool) -> None:
        self._db_ok = ok
        metrics.SERVICE_READY.labels(self.name).set(1 if ok else 0)

    async def _connection_ready(self) -> asyncpg.Connection:
        if self._connection is None or self._connection.is_closed():
            assert self.settings.database_url
            self._connection = await connect_with_retry(
                self.settings.database_url, init=book.prepare, on_wait=self._set_db_ok
            )
        return self._connection

    async def run(self) -> None:
        settings = self.settings
        assert settings.database_url
        connection = await connect_with_retry(settings.database_url, on_wait=self._set_db_ok)
        try:
            if not await self._wait_for_schema(connection):
                return
            programmes = load_programmes(settings.programmes_dir)
            metrics.note_calendars(programmes.values())
            self._payment_bounds = payment_intake.plausibility_bounds(
                {p.id: p.budget_idr for p in programmes.values()})
            for programme in programmes.values():
                release = await ensure_allocation(connection, programme)
                await record_billing(connection, programme)
                await record_time_zone(connection, programme)
                if release.booked:
                    metrics.CONTRIBUTIONS_BOOKED.labels(programme.id).inc(release.booked)
                    metrics.CONTRIBUTIONS_BOOKED_IDR.labels(programme.id).inc(
                        release.booked_idr)
            await refresh_gauges(connection)
        finally:
            await connection.close()
        await ensure_topics(settings)
        options = client_options(settings)
        self._producer = AIOKafkaProducer(**options, linger_ms=5)
        self._consumer = AIOKafkaConsumer(
            TOPIC_CONTRIBUTIONS,
            TOPIC_PAYMENTS,
            TOPIC_BPJS_VERIFICATIONS,
            TOPIC_BPJS_BILLS,
            **options,
            group_id=GROUP_ID,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=settings.ledger_batch_max,
            session_timeout_ms=int(settings.kafka_session_timeout_seconds * 1000),
            heartbeat_interval_ms=int(settings.kafka_heartbeat_interval_seconds * 1000),
            rebalance_timeout_ms=int(settings.kafka_rebalance_timeout_seconds * 1000),
            max_poll_interval_ms=300_000,
            fetch_max_wait_ms=settings.kafka_fetch_max_wait_ms,
        )
        await self._producer.start()
        await self._consumer.start()
        lag_task = asyncio.create_task(self._report_lag())
        self._relay = Relay(settings.database_url, self._producer)
        relay_task = asyncio.create_task(self._relay.run())
        try:
            await self._consume()
        finally:
            lag_task.cancel()
            relay_task.cancel()
            await asyncio.gather(relay_task, return_exceptions=True)
            await self._consumer.stop()
            await self._producer.stop()
            if self._connection is not None:
                await self._connection.close()

    async def _wait_for_schema(self, connection: asyncpg.Connection) -> bool:
        """Not ready until the schema is at the version this code needs; False when asked
        to stop meanwhile."""
        while (reason := await unmigrated(connection)) is not None:
            if self._schema != reason:
                log.warning("waiting: %s", reason)
            self._schema = reason
            try:
                await asyncio.wait_for(self.stopping.wait(), timeout=SCHEMA_CHECK_SECONDS)
                return False
            except TimeoutError:
                pass
        self._schema = None
        return True

    async def _consume(self) -> None:
        assert self._consumer is not None
        settings = self.settings
        while not self.stopping.is_set():
            batches = await self._consumer.getmany(
                timeout_ms=settings.ledger_batch_wait_ms or 1,
                max_records=settings.ledger_batch_max,
            )
            if time.monotonic() - self._gauges_at >= GAUGE_INTERVAL_SECONDS:
                await self._refresh_gauges()
            if not batches:
                if self._connection is not None and self._connection.is_closed():
                    # PostgreSQL went away while nothing was to be written: not ready until
                    # it is back (rather than only once the next write fails).
                    await self._connection_ready()
                continue
            for tp, tp_records in batches.items():
                self._positions.took(tp, tp_records[-1].offset)
            consumed: Counter[str] = Counter()
            for tp, tp_records in batches.items():
                consumed[tp.topic] += len(tp_records)
            for topic, count in consumed.items():  # observed once per batch
                metrics.EVENTS_CONSUMED.labels(self.name, topic).inc(count)
            records = [r for tp_records in batches.values() for r in tp_records]
            schedules: list[tuple[ConsumerRecord, ContributionSchedule]] = []
            confirmed: list[tuple[ConsumerRecord, PaymentConfirmed]] = []
            verdicts: list[tuple[ConsumerRecord, BpjsVerification]] = []
            bpjs_bills_in: list[tuple[ConsumerRecord, BpjsBill]] = []
            for record in records:
                if record.topic == TOPIC_BPJS_BILLS:
                    bill = await self._take_bpjs_bill(record)
                    if bill is not None:
                        bpjs_bills_in.append((record, bill))
                    continue
                if record.topic == TOPIC_BPJS_VERIFICATIONS:
                    verdict = await self._take_verdict(record)
                    if verdict is not None:
                        verdicts.append((record, verdict))
                    continue
                if record.topic == TOPIC_PAYMENTS:
                    payment = await self._take_payment(record)
                    if payment is not None:
                        confirmed.append((record, payment))
                    continue
                schedule = await self._decode(record, ContributionSchedule, "malformed_schedule",
                                              "contribution schedule")
                if schedule is not None:
                    schedules.append((record, schedule))
            if schedules:
                # A schedule the ledger cannot book is found within the batch (the others
                # are booked) and kept as a dead letter; its offset is committed below.
                await poison.isolate(schedules, self._book_until_done, self._record,
                                     self._dead_letter)
            for record, payment in confirmed:
                try:
                    await self._apply_until_done(payment)
                except poison.Poisoned as poisoned:
                    await self._dead_letter((record, payment), poisoned)
            if verdicts:
                await self._apply_verdicts(verdicts)
            for record, bill in bpjs_bills_in:  # after the verdicts they may depend on
                await self._record_bpjs_bill(record, bill)
            offsets = {tp: recs[-1].offset + 1 for tp, recs in batches.items()}
            try:
                await self._consumer.commit(offsets)
                self._committed.update(offsets)
            except (CommitFailedError, KafkaError) as exc:
                # Partitions moved in a rebalance: their next owner replays, idempotently.
                log.warning("offset commit failed (%s); the batch will be replayed", exc)

    async def _decode(self, record: ConsumerRecord, model: type[M], code: str,
                      what: str) -> M | None:
        """The record as a v1 model, or None after sending it to the rejected topic."""
        try:
            return model.model_validate_json(record.value or b"")
        except ValidationError as exc:
            first = exc.errors()[0]
            await self._reject(record, [RejectionError(
                field=".".join(str(p) for p in first["loc"]),
                code=code,
                message=f"{what} does not match the v1 contract: {first['type']}",
            )])
            return None

    async def _take_payment(self, record: ConsumerRecord) -> PaymentConfirmed | None:
        """The record as a payment confirmation, or None after keeping it as a dead letter
        of the payments topic: money finance must see and answer (``iuran deadletter
        list``), never a registration rejection."""
        try:
            return payment_intake.take_payment(record.value, self._payment_bounds)
        except payment_intake.UntakeablePayment as exc:
            await self._dead_letter((record, None), poison.Poisoned(exc.reason, exc))
            return None

    async def _take_verdict(self, record: ConsumerRecord) -> BpjsVerification | None:
        """The record as BPJS's verdict, or None after keeping it as a dead letter."""
        try:
            return bpjs_verdicts.take_verification(record.value)
        except bpjs_verdicts.UntakeableVerdict as exc:
            await self._dead_letter((record, None), poison.Poisoned(exc.reason, exc))
            return None

    async def _apply_verdicts(
            self, verdicts: list[tuple[ConsumerRecord, BpjsVerification]]) -> None:
        """Record the batch's verdicts in one transaction (a standing rejection cancels the
        worker's unbilled months); a verdict that reuses an id with other content, or that
        the ledger cannot write, becomes a dead letter."""
        reused: list[tuple[ConsumerRecord, BpjsVerification]] = []

        async def write(items: Sequence[tuple[ConsumerRecord, BpjsVerification]]
                        ) -> tuple[Sequence[tuple[ConsumerRecord, BpjsVerification]],
                                   bpjs_verdicts.BatchOutcome]:
            taken = [verdict for _, verdict in items]
            outcome = await self._until_done(
                "verdicts", lambda connection: bpjs_verdicts.apply_verifications(
                    connection, taken))
            return items, outcome

        def written(done: tuple[Sequence[tuple[ConsumerRecord, BpjsVerification]],
                                bpjs_verdicts.BatchOutcome]) -> None:
            items, outcome = done
            for item, result in zip(items, outcome.outcomes, strict=True):
                if result == bpjs_verdicts.VERIFICATION_ID_REUSED:
                    reused.append(item)
                elif result != bpjs_verdicts.REPLAYED:
                    metrics.BPJS_VERDICTS.labels(item[1].programme, item[1].status).inc()
            if outcome.result is not None:
                self._record(outcome.result)

        await poison.isolate(verdicts, write, written, self._dead_letter)
        for record, verdict in reused:
            error = bpjs_verdicts.UntakeableVerdict(
                bpjs_verdicts.VERIFICATION_ID_REUSED,
                f"verification {verdict.verification_id} was received before with other "
                "content; the first is kept")
            await self._dead_letter((record, verdict),
                                    poison.Poisoned(error.reason, error))

    async def _take_bpjs_bill(self, record: ConsumerRecord) -> BpjsBill | None:
        try:
            return bpjs_bills.take_bill(record.value)
        except bpjs_bills.UntakeableBill as exc:
            await self._dead_letter((record, None), poison.Poisoned(exc.reason, exc))
            return None

    async def _record_bpjs_bill(self, record: ConsumerRecord, bill: BpjsBill) -> None:
        """Keep BPJS's bill once and count its lines that do not reconcile (an alert)."""
        try:
            outcome = await self._until_done(
                "BPJS bill", lambda connection: bpjs_bills.record_bill(connection, bill))
        except poison.Poisoned as poisoned:
            await self._dead_letter((record, bill), poisoned)
            return
        if outcome.outcome == bpjs_bills.BPJS_BILL_ID_REUSED:
            reused = bpjs_bills.UntakeableBill(
                outcome.outcome, f"BPJS bill {bill.bpjs_bill_id} was received before with "
                                 "other content; the first is kept")
            await self._dead_letter((record, bill), poison.Poisoned(outcome.outcome, reused))
            return
        for result, lines in outcome.lines.items():
            if result != "matched":
                metrics.BPJS_BILL_LINES_UNRECONCILED.labels(bill.programme, result).inc(lines)
        unreconciled = sum(n for r, n in outcome.lines.items() if r != "matched")
        if unreconciled:
            log.warning("BPJS bill of %s for %s: %d line(s) do not reconcile "
                        "(finance.bpjs_reconciliation)", bill.programme, bill.period,
                        unreconciled)
        if outcome.outcome == bpjs_bills.RECORDED:
            self._missing_due = True  # the months left unbilled, counted again soon

    async def _refresh_gauges(self) -> None:
        self._gauges_at = time.monotonic()
        cover = self._gauges_at - self._cover_gauge_at >= COVER_GAUGE_INTERVAL_SECONDS
        # months BPJS did not bill: with the cover gauge, and soon after a BPJS bill (or
        # part) arrived, but at most once a minute while a bill's parts keep coming
        after_bill = self._missing_due and (self._gauges_at - self._missing_gauge_at
                                            >= MISSING_GAUGE_INTERVAL_SECONDS)
        try:
            connection = await self._connection_ready()
            await refresh_gauges(connection, cover=cover)
            if cover:
                self._cover_gauge_at = self._gauges_at
            if cover or after_bill:
                await refresh_missing_at_bpjs_gauge(connection)
                self._missing_due = False
                if after_bill:
                    self._missing_gauge_at = self._gauges_at
        except RETRYABLE as exc:
            log.warning("gauges not refreshed (%s)", type(exc).__name__)

    async def _until_done(
        self, what: str, write: Callable[[asyncpg.Connection], Awaitable[T]]
    ) -> T:
        """Run ``write`` on the ledger connection, retrying with backoff while PostgreSQL is
        unreachable or failing for a reason of its own: a failed write is never skipped
        (Kafka offsets wait for it). A failure caused by the records written raises
        :class:`poison.Poisoned` instead (see :func:`poison.poison_reason`)."""

        async def attempt() -> T:
            connection = await self._connection_ready()
            try:
                return await write(connection)
            except RETRYABLE:
                await _discard(connection)
                raise
            except Exception as exc:
                reason = poison.poison_reason(exc)
                if reason is not None:
                    raise poison.Poisoned(reason, exc) from exc
                # The ledger's or the server's own fault: no record is to blame; wait (on
                # a fresh connection: this one may be in any state).
                await _discard(connection)
                raise _OwnFault(exc) from exc

        def retrying(exc: BaseException, delay: float) -> None:
            metrics.LEDGER_WRITE_RETRIES.inc()
            self._set_db_ok(False)
            if isinstance(exc, _OwnFault):
                log.error("%s write failed (%s); retrying in %.1fs", what,
                          type(exc.cause).__name__, delay, exc_info=exc.cause)
            else:
                log.warning("%s write failed (%s); retrying in %.1fs", what,
                            type(exc).__name__, delay)

        result = await until_done(attempt, (*RETRYABLE, _OwnFault), on_retry=retrying,
                                  max_delay=_longest_wait)
        self._set_db_ok(True)
        return result

    async def _dead_letter(self, item: tuple[ConsumerRecord, BaseModel | None],
                           poisoned: poison.Poisoned) -> None:
        """Keep a record the ledger cannot book or apply as a dead letter."""
        record = item[0]
        letter = DeadLetter(
            service=self.name, topic=record.topic, partition=record.partition,
            offset=record.offset, key=record.key, value=record.value, reason=poisoned.reason,
            detail=poisoned.detail)
        await self._until_done(
            "dead letter", lambda connection: record_dead_letters(connection, [letter]))

    async def _apply_until_done(self, payment: PaymentConfirmed) -> None:
        """Apply one payment confirmation."""
        outcome = await self._until_done(
            "payment", lambda connection: payments.apply_payment(connection, payment))
        if outcome.outcome == payments.SETTLED:
            metrics.PAYMENTS_SETTLED.labels(payment.programme).inc()
        if outcome.outcome != payments.REPLAYED:
            self._gauges_at = 0.0  # show a settled bill or a new discrepancy soon
            if self._relay is not None:
                self._relay.wake()

    async def _reject(self, record: ConsumerRecord, errors: list[RejectionError]) -> None:
        assert self._producer is not None
        rejected = rejected_event(record.value, record.topic, record.partition, record.offset,
                                  errors)
        for item in errors:
            metrics.REGISTRATIONS_REJECTED.labels(item.code).inc()
        log.error("rejected record", extra={"topic": record.topic, "partition": record.partition,
                                            "offset": record.offset, "code": errors[0].code})
        await self._producer.send_and_wait(
            TOPIC_REJECTED, key=record.key, value=rejected.model_dump_json().encode()
        )

    async def _book_until_done(
        self, items: Sequence[tuple[ConsumerRecord, ContributionSchedule]]
    ) -> book.BatchResult:
        """Book a batch of schedules in one transaction."""
        schedules = [schedule for _, schedule in items]

        async def timed(connection: asyncpg.Connection) -> book.BatchResult:
            started = time.perf_counter()
            result = await book.book_schedules(connection, schedules)
            metrics.LEDGER_WRITE_SECONDS.observe(time.perf_counter() - started)
            return result

        return await self._until_done("ledger", timed)

    def _record(self, result: book.BatchResult) -> None:
        if self._relay is not None:
            self._relay.wake()
        for programme, count in result.booked.items():
            metrics.CONTRIBUTIONS_BOOKED.labels(programme).inc(count)
            metrics.CONTRIBUTIONS_BOOKED_IDR.labels(programme).inc(result.booked_idr[programme])
        for programme, count in result.duplicates.items():
            metrics.CONTRIBUTIONS_DUPLICATE.labels(programme).inc(count)
        for programme, count in result.held.items():
            metrics.CONTRIBUTIONS_HELD.labels(programme).inc(count)
            log.warning("%d contributions of %s held: the budget allocation is used up",
                        count, programme)
        for programme, count in result.reversed.items():
            metrics.CONTRIBUTIONS_REVERSED.labels(programme).inc(count)
        for programme, count in result.unbookable.items():
            metrics.CONTRIBUTIONS_UNBOOKABLE.labels(programme).inc(count)
            log.error("%d contributions of %s could not be placed (neither booked, held nor a "
                      "duplicate) and are recorded in finance.refused_contributions (%s)",
                      count, programme, ", ".join(sorted(result.refused_reasons)))
        for age in result.event_ages:
            metrics.EVENT_AGE_SECONDS.observe(max(age, 0.0))

    async def _report_lag(self) -> None:
        assert self._consumer is not None
        consumer = self._consumer
        while True:
            await asyncio.sleep(5)
            try:
                publish_lag(self.name, consumer.assignment(), consumer.highwater,
                            self._committed.get,
                            [TOPIC_CONTRIBUTIONS, TOPIC_PAYMENTS, TOPIC_BPJS_VERIFICATIONS,
                             TOPIC_BPJS_BILLS])
            except KafkaError as exc:
                log.debug("lag report skipped: %s", exc)


class _OwnFault(Exception):
    """A write failed for a reason of the ledger's or the server's own, not of a record."""

    def __init__(self, cause: Exception) -> None:
        super().__init__(str(cause))
        self.cause = cause


def _longest_wait(exc: BaseException) -> float:
    """Up to 30 s between tries of a write that fails for the ledger's own reason (an
    operator has to act), up to 5 s while PostgreSQL is only unreachable."""
    return 30.0 if isinstance(exc, _OwnFault) else 5.0


async def _discard(connection: asyncpg.Connection) -> None:
    if not connection.is_closed():
        await connection.close()


def run(settings: Settings) -> int:
    asyncio.run(LedgerService(settings).serve())
    return 0
