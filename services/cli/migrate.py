"""``iuran migrate``: bring the ledger's schema up to date (the services only check it)."""

from __future__ import annotations

import argparse
import asyncio
import sys

from services.ledger.migrate import MigrationError, migrate_url
from services.runtime.settings import Settings
from services.runtime.stack import infrastructure


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser("migrate", help="apply the ledger's SQL migrations")
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace, settings: Settings) -> int:
    from services.cli.errors import CliError

    with infrastructure(settings.model_copy(update={"kafka_bootstrap": "unused"})) as ready:
        assert ready.database_url
        try:
            applied = asyncio.run(migrate_url(ready.database_url))
        except MigrationError as exc:
            raise CliError(str(exc)) from exc
    sys.stdout.write(
        ("applied: " + ", ".join(applied) if applied else "the ledger schema is up to date") + "\n"
    )
    return 0
