"""``iuran migrate``: apply the ledger migrations (the services also do it on start)."""

from __future__ import annotations

import argparse
import asyncio
import sys

from services.ledger.migrate import migrate_url
from services.runtime.settings import Settings
from services.runtime.stack import infrastructure


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser("migrate", help="apply the ledger's SQL migrations")
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace, settings: Settings) -> int:
    with infrastructure(settings.model_copy(update={"kafka_bootstrap": "unused"})) as ready:
        assert ready.database_url
        applied = asyncio.run(migrate_url(ready.database_url))
    sys.stdout.write(
        ("applied: " + ", ".join(applied) if applied else "the ledger schema is up to date") + "\n"
    )
    return 0
