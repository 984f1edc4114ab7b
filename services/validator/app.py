"""The validator's Faust app: one agent over the registrations topic, a table keyed by NIK
that holds each worker's enrolments (co-partitioned with the topic, whose key is the NIK)."""

from __future__ import annotations

import logging
from typing import Any

import faust

from schemas.events import TOPIC_CONTRIBUTIONS, TOPIC_REGISTRATIONS, TOPIC_REJECTED
from services.domain.programme import Programme
from services.runtime import metrics
from services.runtime.lag import install_faust_lag
from services.runtime.settings import Settings
from services.validator.process import Outcome, Source, process_registration

log = logging.getLogger(__name__)

APP_ID = "iuran-validator"


def broker_credentials(settings: Settings) -> Any:
    """Faust credentials matching the aiokafka client options (None for PLAINTEXT)."""
    protocol = settings.kafka_security_protocol
    if protocol == "PLAINTEXT":
        return None
    import ssl

    context = None
    if protocol in ("SSL", "SASL_SSL"):
        cafile = str(settings.kafka_ssl_cafile) if settings.kafka_ssl_cafile else None
        context = ssl.create_default_context(cafile=cafile)
    if protocol == "SSL":
        return faust.SSLCredentials(context)
    secret = settings.kafka_sasl_password
    return faust.SASLCredentials(
        username=settings.kafka_sasl_username,
        password=secret.get_secret_value() if secret else "",
        ssl_context=context,
        mechanism=settings.kafka_sasl_mechanism or "PLAIN",
    )


def create_app(settings: Settings, programmes: dict[str, Programme]) -> faust.App:
    app = faust.App(
        APP_ID,
        broker=f"kafka://{settings.kafka_bootstrap}",
        broker_credentials=broker_credentials(settings),
        store="memory://",
        key_serializer="raw",
        value_serializer="raw",
        topic_partitions=settings.partitions,
        topic_replication_factor=settings.replication_factor,
        web_enabled=False,
        consumer_auto_offset_reset="earliest",
        broker_session_timeout=settings.kafka_session_timeout_seconds,
        broker_heartbeat_interval=settings.kafka_heartbeat_interval_seconds,
        broker_rebalance_timeout=settings.kafka_rebalance_timeout_seconds,
        broker_commit_interval=1.0,
        producer_linger=0.005,
        stream_wait_empty=False,
        table_standby_replicas=0,
    )
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
