"""``iuran deadletter list``: the records a service could not process and set aside
(finance.dead_letters), newest last. Digit runs that could be a NIK or a phone number are
masked unless ``--personal-data`` is given."""

from __future__ import annotations

import argparse
import json
import re
import sys
from typing import Any

import asyncpg

from services.cli import arguments
from services.cli.ledger_db import with_ledger
from services.cli.service import EVERY_SERVICE
from services.domain.nik import mask_nik
from services.privacy import access_log
from services.privacy.access_log import Access, NikTally, cli_actor
from services.runtime.settings import Settings

PREVIEW_CHARS = 160
_DIGIT_RUN = re.compile(r"[0-9]{7,}")



def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser("deadletter", help="records set aside as dead letters: list")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    listing = actions.add_parser("list", help="dead letters, oldest first")
    listing.add_argument("--service", choices=EVERY_SERVICE, help="only this service's")
    listing.add_argument("--limit", type=arguments.positive, default=100,
                         help="at most this many, the newest (default 100)")
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    listing.add_argument("--personal-data", action="store_true",
                         help="show digit runs (NIKs, phone numbers) unmasked")
    listing.set_defaults(handler=handle_list)


def mask_digits(text: str) -> str:
    """Every run of 7 or more digits masked as a NIK is (first 4 and last 2 kept)."""
    return _DIGIT_RUN.sub(lambda m: mask_nik(m.group()), text)


def handle_list(args: argparse.Namespace, settings: Settings) -> int:
    async def work(connection: asyncpg.Connection) -> list[asyncpg.Record]:
        rows: list[asyncpg.Record] = await connection.fetch(
            """SELECT * FROM (SELECT * FROM finance.dead_letters
                               WHERE $1::text IS NULL OR service = $1
                               ORDER BY dead_letter_id DESC LIMIT $2) newest
                ORDER BY dead_letter_id""", args.service, args.limit)
        tally = NikTally()
        for row in rows:
            tally.add_text(f"{row['key_text'] or ''} {row['value_text'] or ''}")
        await access_log.record(connection, Access(
            actor=cli_actor(), role="operator", channel="cli", what="iuran deadletter list",
            purpose="", filters={"service": args.service, "limit": args.limit},
            masked=not args.personal_data), tally)
        return rows

    show = (lambda text: text) if args.personal_data else mask_digits
    rows = with_ledger(settings, work)
    for r in rows:
        item: dict[str, Any] = {
            "dead_letter_id": r["dead_letter_id"], "service": r["service"],
            "topic": r["topic"], "partition": r["partition"], "offset": r["offset"],
            "reason": r["reason"], "detail": show(r["detail"]),
            "key": None if r["key_text"] is None else show(r["key_text"]),
            "value": None if r["value_text"] is None else show(r["value_text"]),
            "value_bytes": r["value_bytes"], "recorded_at": r["recorded_at"].isoformat(),
        }
        if args.json:
            sys.stdout.write(json.dumps(item, ensure_ascii=False) + "\n")
            continue
        preview = (item["value"] or "")[:PREVIEW_CHARS].replace("\n", " ")
        sys.stdout.write(
            f"{item['dead_letter_id']} {item['recorded_at']} {item['service']} "
            f"{item['topic']}[{item['partition']}]@{item['offset']} {item['reason']}: "
            f"{item['detail']} | {item['value_bytes'] or 0} bytes: {preview}\n")
    if not rows and not args.json:
        sys.stdout.write("no dead letter\n")
    return 0
