"""Run a Faust app as its own process, with the ops endpoints every service serves."""

from __future__ import annotations

import ssl
from collections.abc import Callable
from typing import Any

import faust

from services.runtime import metrics, patches
from services.runtime.http import Handler, OpsServer
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


def _request_timeout(settings: Settings) -> dict[str, Any]:
    """The producer's request timeout when one is configured (else Faust's default)."""
    seconds = settings.kafka_request_timeout_seconds
    return {} if seconds is None else {"producer_request_timeout": seconds}


def create_faust_app(app_id: str, settings: Settings, service: str) -> faust.App:
    """A Faust app with the settings every iuran Faust service shares.

    Values travel as raw bytes (the services decode them with the v1 models, so a malformed
    event becomes a rejection, not a deserialisation crash); the services keep no Faust
    table (their state is in PostgreSQL); producer batches are large because a contribution
    schedule is a few KiB and per-request overhead dominates with small batches.
    """
    patches.apply(settings.kafka_fetch_max_wait_ms)
    # one folder per process: two processes of a service on one machine must not share one
    datadir = settings.data_dir.resolve() / "faust" / f"{service}-{settings.port_of(service)}"
    datadir.parent.mkdir(parents=True, exist_ok=True)
    return faust.App(
        app_id,
        datadir=str(datadir),
        broker=f"kafka://{settings.kafka_bootstrap}",
        broker_credentials=broker_credentials(settings),
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

    @app.task  # type: ignore[untyped-decorator]  # faust types it loosely
    async def _start_ops() -> None:
        await ops.start()
        state["started"] = True
        metrics.SERVICE_READY.labels(service).set(1)

    worker = faust.Worker(app, loglevel=settings.log_level, quiet=True,
                          override_logging=False, redirect_stdouts=False)
    worker.execute_from_commandline()
    return 0
