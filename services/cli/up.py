"""``iuran up``: the embedded infrastructure and every service, in the foreground until Ctrl-C."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
import time

from services.cli.service import EVERY_SERVICE
from services.ledger.migrate import MigrationError, migrate_url
from services.runtime.kafka import ensure_topics
from services.runtime.settings import Settings
from services.runtime.stack import ServiceProcesses, StackError, infrastructure

DEFAULT_BROKER_PORT = 19092


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser("up", help="run the infrastructure and all services until Ctrl-C")
    parser.add_argument("--broker-port", type=int, default=DEFAULT_BROKER_PORT,
                        help="port of the embedded broker (default %(default)s)")
    parser.set_defaults(handler=handle)


def prepare(settings: Settings) -> None:
    """Schema and topics before the services start (the services wait for the schema but
    never migrate it)."""
    from services.cli.errors import CliError

    assert settings.database_url
    try:
        asyncio.run(migrate_url(settings.database_url))
    except MigrationError as exc:
        raise CliError(str(exc)) from exc
    asyncio.run(ensure_topics(settings))


def handle(args: argparse.Namespace, settings: Settings) -> int:
    from services.cli.errors import CliError

    if not 1 <= args.broker_port <= 65535:
        raise CliError(f"--broker-port {args.broker_port} is not a TCP port")
    stop = {"requested": False}

    def request_stop(*_: object) -> None:
        stop["requested"] = True

    signal.signal(signal.SIGTERM, request_stop)
    with infrastructure(settings, broker_port=args.broker_port) as ready:
        prepare(ready)
        services = ServiceProcesses(ready, EVERY_SERVICE, ready.data_dir.resolve() / "logs")
        services.start()
        try:
            services.wait_ready()
            out = sys.stdout
            out.write("iuran is up.\n")
            out.write(f"  export IURAN_KAFKA_BOOTSTRAP={ready.kafka_bootstrap}\n")
            out.write(f"  export IURAN_DATABASE_URL='{ready.database_url}'\n")
            for name in EVERY_SERVICE:
                out.write(f"  {name:<10} http://{ready.http_host}:{ready.port_of(name)}/metrics\n")
            api = f"http://{ready.http_host}:{ready.api_port}"
            out.write(f"  coverage page {api}/coverage, finance API {api}/docs, "
                      f"OPD page {api}/opd\n")
            out.write(f"  logs in {services.log_dir}; Ctrl-C stops everything\n")
            out.flush()
            while not stop["requested"]:
                services.restart_dead()  # a supervisor: a crashed service comes back
                time.sleep(0.5)
        except KeyboardInterrupt:
            pass
        except StackError as exc:
            raise CliError(str(exc)) from exc
        finally:
            services.stop()
    return 0
