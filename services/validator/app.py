"""The validator's Faust app: one agent over the registrations topic, a table keyed by NIK
that holds each worker's enrolments (co-partitioned with the topic, whose key is the NIK)."""

from __future__ import annotations

import logging

import faust

from schemas.events import TOPIC_CONTRIBUTIONS, TOPIC_REGISTRATIONS, TOPIC_REJECTED
from services.domain.programme import Programme
from services.runtime import metrics
from services.runtime.faust_worker import broker_credentials, create_faust_app
from services.runtime.lag import install_faust_lag
from services.runtime.settings import Settings
from services.validator.process import Outcome, Source, process_registration

log = logging.getLogger(__name__)

APP_ID = "iuran-validator"
__all__ = ["APP_ID", "broker_credentials", "create_app"]


def create_app(settings: Settings, programmes: dict[str, Programme]) -> faust.App:
    app = create_faust_app(APP_ID, settings, "validator")
    registrations = app.topic(TOPIC_REGISTRATIONS, key_type=bytes, value_type=bytes,
                              partitions=settings.partitions)
    contributions = app.topic(TOPIC_CONTRIBUTIONS, key_type=bytes, value_type=bytes,
                              partitions=settings.partitions)
    rejected = app.topic(TOPIC_REJECTED, key_type=bytes, value_type=bytes,
                         partitions=settings.partitions)
    enrollments = app.Table(
        "enrollments", default=None, partitions=settings.partitions,
    )

    def emit(outcome: Outcome, key: bytes | None) -> None:
        for schedule in outcome.schedules:
            contributions.send_soon(key=key, value=schedule.model_dump_json().encode())
            metrics.SCHEDULES_EMITTED.labels(schedule.kind).inc()
        if outcome.schedules and not outcome.duplicate_event:
            metrics.REGISTRATIONS_ACCEPTED.labels(outcome.programme, outcome.event_type).inc()
        if outcome.rejected is not None:
            rejected.send_soon(key=key, value=outcome.rejected.model_dump_json().encode())
            for item in outcome.rejected.errors:
                metrics.REGISTRATIONS_REJECTED.labels(item.code).inc()
            first = outcome.rejected.errors[0]
            log.info("registration rejected: %s", first.code,
                     extra={"topic": outcome.rejected.source_topic,
                            "partition": outcome.rejected.partition,
                            "offset": outcome.rejected.offset, "code": first.code})
        if outcome.duplicate_event:
            metrics.REGISTRATIONS_DUPLICATE_EVENTS.inc()

    @app.agent(registrations, name="validate")
    async def validate(stream: faust.StreamT[bytes]) -> None:
        async for event in stream.events():
            message = event.message
            source = Source(message.topic, message.partition, message.offset)
            metrics.EVENTS_CONSUMED.labels("validator", message.topic).inc()
            try:
                outcome = process_registration(
                    message.key, message.value, source, programmes, enrollments.get
                )
                if outcome.state is not None and outcome.nik is not None:
                    enrollments[outcome.nik] = outcome.state
                emit(outcome, message.key)
            except Exception:  # an exception must never escape: Faust would ack the event
                log.exception("validator failed on an event; it goes to the rejected topic",
                              extra={"topic": source.topic, "partition": source.partition,
                                     "offset": source.offset})
                _reject_internal(rejected, message.key, message.value, source)

    install_faust_lag(app, "validator", [TOPIC_REGISTRATIONS])
    return app


def _reject_internal(rejected: faust.TopicT, key: bytes | None, value: bytes | None,
                     source: Source) -> None:
    from datetime import UTC, datetime

    from schemas.events import RejectedEvent, RejectionError

    record = RejectedEvent(
        original=(value or b"")[:4096].decode("utf-8", errors="replace"),
        source_topic=source.topic, partition=source.partition, offset=source.offset,
        rejected_at=datetime.now(UTC),
        errors=[RejectionError(field="", code="internal_error",
                               message="the validator could not process this event; "
                                       "operations has been alerted")],
    )
    metrics.REGISTRATIONS_REJECTED.labels("internal_error").inc()
    rejected.send_soon(key=key, value=record.model_dump_json().encode())
