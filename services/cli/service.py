"""``iuran service NAME``: run one service in the foreground against configured infrastructure."""

from __future__ import annotations

import argparse
import importlib

from services.runtime.settings import Settings

SERVICES = {
    "validator": "services.validator.service",
    "ledger": "services.ledger.service",
    "projector": "services.projector.service",
    "api": "services.api.service",
}
PIPELINE = ("validator", "ledger", "projector")
EVERY_SERVICE = (*PIPELINE, "api")


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser("service", help="run one service (needs Kafka and PostgreSQL)")
    parser.add_argument("name", choices=sorted(SERVICES), help="the service to run")
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace, settings: Settings) -> int:
    from services.cli.errors import CliError

    missing = [
        name for name, value in (("IURAN_KAFKA_BOOTSTRAP", settings.kafka_bootstrap),
                                 ("IURAN_DATABASE_URL", settings.database_url)) if not value
    ]
    if missing:
        raise CliError(f"`iuran service` needs {' and '.join(missing)} (or run `iuran up`)")
    module = importlib.import_module(SERVICES[args.name])
    return int(module.run(settings))
