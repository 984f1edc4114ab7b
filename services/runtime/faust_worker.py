"""Run a Faust app as its own process, with the ops endpoints every service serves."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Callable
from typing import Any

import faust

from services.runtime import metrics
from services.runtime.http import Handler, OpsServer
from services.runtime.kafka import client_options
from services.runtime.settings import Settings


def broker_credentials(settings: Settings) -> Any:
    """Faust credentials matching the aiokafka client options (None for PLAINTEXT)."""
    protocol = settings.kafka_security_protocol
    if protocol == "PLAINTEXT":
        return None
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


_fetch_wait = {"ms": 50}


def _bound_fetch_wait(ms: int) -> None:
    """Faust builds its aiokafka consumer with fetch_max_wait_ms=1500 and no setting to
    change it. The embedded broker holds a fetch for most of that wait even when data has
    arrived, which put ~0.4 s on every hop of a quiet stream; Kafka answers as soon as
    fetch_min_bytes are there, so a short wait costs it nothing. The wait is set on the
    consumer Faust created, before it starts."""
    from faust.transport.drivers import aiokafka as driver

    _fetch_wait["ms"] = ms
    thread_class = driver.AIOKafkaConsumerThread
    if getattr(thread_class, "_iuran_fetch_wait", False):
        return
    original = thread_class._create_worker_consumer

    def create_worker_consumer(self: Any, transport: Any) -> Any:
        consumer = original(self, transport)
        consumer._fetch_max_wait_ms = _fetch_wait["ms"]  # noqa: SLF001
        return consumer

    thread_class._create_worker_consumer = create_worker_consumer  # type: ignore[method-assign]
    thread_class._iuran_fetch_wait = True  # type: ignore[attr-defined]


_highwater_client: dict[str, Any] = {}


async def true_highwaters(options: dict[str, Any], ends: dict[Any, int]) -> dict[Any, int]:
    """End offsets confirmed by a fetch.

    The embedded broker answers ListOffsets(latest) with the base offset of the partition's
    last record batch plus one, not the last record's offset plus one; fetch responses carry
    the right high watermark. Faust rebuilds a table from its changelog up to the
    ListOffsets answer, so without this the last records of each changelog partition were
    forgotten at every restart. On Kafka both answers agree and this changes nothing.
    """
    from aiokafka import AIOKafkaConsumer, TopicPartition

    wanted = {tp: end for tp, end in ends.items() if end is not None and end > 0}
    if not wanted:
        return dict(ends)
    probe = AIOKafkaConsumer(**options, group_id=None, enable_auto_commit=False,
                             fetch_max_wait_ms=50)
    await probe.start()
    try:
        partitions = [TopicPartition(tp.topic, tp.partition) for tp in wanted]
        probe.assign(partitions)
        for tp, end in zip(partitions, wanted.values(), strict=True):
            probe.seek(tp, end - 1)
        await probe.getmany(timeout_ms=2000)
        corrected = dict(ends)
        for original, tp in zip(wanted, partitions, strict=True):
            seen = probe.highwater(tp)
            if seen is not None and seen > wanted[original]:
                corrected[original] = seen
        return corrected
    finally:
        await probe.stop()


def _confirm_highwaters(options: dict[str, Any]) -> None:
    """Make Faust's table recovery use :func:`true_highwaters`."""
    from faust.transport.drivers import aiokafka as driver

    _highwater_client["options"] = options
    thread_class = driver.AIOKafkaConsumerThread
    if getattr(thread_class, "_iuran_highwaters", False):
        return
    original = thread_class._highwaters

    async def highwaters(self: Any, partitions: Any) -> Any:
        ends = dict(await original(self, partitions))
        if self.consumer.in_transaction:
            return ends
        return await true_highwaters(_highwater_client["options"], ends)

    thread_class._highwaters = highwaters  # type: ignore[method-assign]
    thread_class._iuran_highwaters = True  # type: ignore[attr-defined]


def _flush_means_everything() -> None:
    """Make Faust's producer-buffer flush wait until every message buffered before it
    started is handed over.

    Before committing offsets Faust flushes its producer, but the buffer that ``send_soon``
    and every table write go through returned from ``flush`` as soon as one message took
    longer than 0.1 s, and did not count the message being handed over at that moment.
    Offsets could then be committed while schedules or changelog records were still in the
    buffer, and a ``kill -9`` lost them for good. Now flush returns once the messages that
    were buffered or in flight when it started are handed over (the buffer is a FIFO; the
    offsets to commit are chosen before the flush, and an event's messages are buffered
    before it is acked, so these include every output of the events committed); if the
    broker is away it waits, and so does the commit (at-least-once). It does not wait for
    the buffer to be empty: under a steady stream it never is, and no commit would come.
    """
    from faust.transport import producer as faust_producer

    buffer_class = faust_producer.ProducerBuffer
    if getattr(buffer_class, "_iuran_flush", False):
        return
    send_pending = buffer_class._send_pending

    async def counted_send_pending(self: Any, fut: Any) -> None:
        self._iuran_in_flight = getattr(self, "_iuran_in_flight", 0) + 1
        try:
            await send_pending(self, fut)
        finally:
            self._iuran_in_flight -= 1
            self._iuran_handed = getattr(self, "_iuran_handed", 0) + 1

    async def flush(self: Any) -> None:
        handed = getattr(self, "_iuran_handed", 0)
        target = handed + self.size + getattr(self, "_iuran_in_flight", 0)
        while getattr(self, "_iuran_handed", 0) < target:
            if self.state != "running" and self.size:
                raise RuntimeError("Cannot flush: Producer not Running")
            self.message_sent.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.message_sent.wait(), timeout=0.1)

    buffer_class._send_pending = counted_send_pending  # type: ignore[method-assign]
    buffer_class.flush = flush  # type: ignore[method-assign]
    buffer_class._iuran_flush = True  # type: ignore[attr-defined]


def _request_timeout(settings: Settings) -> dict[str, Any]:
    """The producer's request timeout when one is configured (else Faust's default)."""
    seconds = settings.kafka_request_timeout_seconds
    return {} if seconds is None else {"producer_request_timeout": seconds}


def create_faust_app(app_id: str, settings: Settings, service: str) -> faust.App:
    """A Faust app with the settings every iuran Faust service shares.

    Values travel as raw bytes (the services decode them with the v1 models, so a malformed
    event becomes a rejection, not a deserialisation crash); tables live in memory and are
    rebuilt from their changelog topics; producer batches are large because a contribution
    schedule is a few KiB and per-request overhead dominates with small batches.
    """
    _bound_fetch_wait(settings.kafka_fetch_max_wait_ms)
    _confirm_highwaters(client_options(settings))
    _flush_means_everything()
    # one folder per process: two processes of a service on one machine must not share one
    datadir = settings.data_dir.resolve() / "faust" / f"{service}-{settings.port_of(service)}"
    datadir.parent.mkdir(parents=True, exist_ok=True)
    return faust.App(
        app_id,
        datadir=str(datadir),
        broker=f"kafka://{settings.kafka_bootstrap}",
        broker_credentials=broker_credentials(settings),
        store="rocksdb://" if settings.table_store == "rocksdb" else "memory://",
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
        producer_linger=0.02,
        producer_max_batch_size=1024 * 1024,
        producer_max_request_size=4 * 1024 * 1024,
        **_request_timeout(settings),
        stream_wait_empty=False,
        table_standby_replicas=0,
    )


def run_faust_app(
    app: faust.App, service: str, settings: Settings, routes: dict[str, Handler] | None = None,
    health: Callable[[], tuple[bool, str]] | None = None,
) -> int:
    """Run the app's worker. ``health`` adds the service's own readiness (e.g. waiting for
    PostgreSQL or for the broker to take its outputs)."""
    state = {"started": False}

    def readiness() -> tuple[bool, str]:
        if not state["started"]:
            return False, "starting"
        if app.rebalancing:
            return False, "rebalancing"
        if health is not None:
            return health()
        return True, "ok"

    ops = OpsServer(service, settings.http_host, settings.port_of(service), readiness, routes)

    @app.task
    async def _start_ops() -> None:
        await ops.start()
        state["started"] = True
        metrics.SERVICE_READY.labels(service).set(1)

    worker = faust.Worker(app, loglevel=settings.log_level, quiet=True,
                          override_logging=False, redirect_stdouts=False)
    worker.execute_from_commandline()
    return 0
