"""``iuran privacy``: the data protection officer's commands.

``access-log [--nik N] [--json]`` — every read of personal data (who, when, what, which NIKs,
why), newest first. ``subject NIK [--json|--out FILE]`` — everything iuran holds on one
person. ``purge --before DATE [--dry-run]`` — erase name, birth date, phone and address of
workers whose retention ended, and replace the NIK of those whose financial archive ended by
its keyed pseudonym (docs/privacy.md). Each read is itself recorded."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import asyncpg

from services.cli import arguments
from services.cli.ledger_db import with_ledger
from services.domain.programme import ProgrammeConfigError, load_programmes
from services.privacy import access_log
from services.privacy.access_log import Access, NikTally, cli_actor
from services.privacy.keys import privacy_keys
from services.privacy.pseudonyms import nik_pseudonym
from services.privacy.retention import Purge, plan, purge
from services.privacy.subject import SECTIONS, as_json, json_value, subject_record
from services.runtime.settings import Settings


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser("privacy", help="personal data: access log, a person's record, "
                                            "retention purge")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    log = actions.add_parser("access-log", help="every read of personal data, newest first")
    log.add_argument("--nik", type=arguments.nik, help="only the reads of this person")
    log.add_argument("--limit", type=int, default=1000, help="at most this many (1000)")
    log.add_argument("--json", action="store_true", help="one JSON object per line")
    log.add_argument("--purpose", default="", help="why (kept in the access log)")
    log.set_defaults(handler=handle_access_log)
    subject = actions.add_parser("subject", help="everything iuran holds on one person")
    subject.add_argument("nik", type=arguments.nik, help="the person's NIK")
    shape = subject.add_mutually_exclusive_group()
    shape.add_argument("--json", action="store_true", help="the document as JSON")
    shape.add_argument("--out", type=Path, help="write the JSON document to this file")
    subject.add_argument("--purpose", default="",
                         help="why (kept in the access log), e.g. the request's reference")
    subject.set_defaults(handler=handle_subject)
    purging = actions.add_parser(
        "purge", help="erase name, birth date, phone and address of workers whose retention "
                      "ended (the money trail stays)")
    purging.add_argument("--before", type=arguments.day, required=True,
                       help="erase what each programme's retention ends on or before, "
                            "YYYY-MM-DD")
    purging.add_argument("--dry-run", action="store_true", help="say what would be erased")
    purging.set_defaults(handler=handle_purge)


async def _record(connection: asyncpg.Connection, what: str, purpose: str,
                  filters: dict[str, Any], nik: str | None) -> None:
    tally = NikTally()
    tally.add(nik)
    await access_log.record(connection, Access(
        actor=cli_actor(), role="operator", channel="cli", what=what, purpose=purpose,
        filters=filters), tally)


def _json(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, default=json_value)


def handle_access_log(args: argparse.Namespace, settings: Settings) -> int:
    from services.cli.errors import CliError

    if not 1 <= args.limit <= 100_000:
        raise CliError("--limit is a whole number from 1 to 100000")

    async def work(connection: asyncpg.Connection) -> list[dict[str, Any]]:
        rows = await access_log.read(connection, nik=args.nik, limit=args.limit)
        await _record(connection, "iuran privacy access-log", args.purpose,
                      {"nik": args.nik, "limit": args.limit}, args.nik)
        return rows

    rows = with_ledger(settings, work)
    for row in rows:
        if args.json:
            sys.stdout.write(_json(row) + "\n")
            continue
        read = ", ".join(row["niks"]) if row["niks"] else f"{row['nik_count']} NIKs (bulk)"
        sys.stdout.write(
            f"{row['at'].isoformat()} {row['actor']} ({row['role']}) {row['channel']} "
            f"{row['what']} {_json(row['filters'])}: {read}"
            f"{' masked' if row['masked'] else ''} — {row['purpose']}\n")
    if not rows and not args.json:
        sys.stdout.write("no read recorded\n")
    return 0


def handle_subject(args: argparse.Namespace, settings: Settings) -> int:
    async def work(connection: asyncpg.Connection) -> dict[str, Any]:
        document = await subject_record(connection, args.nik,
                                        nik_pseudonym(privacy_keys(settings), args.nik))
        await _record(connection, "iuran privacy subject", args.purpose, {"nik": args.nik},
                      args.nik)
        return document

    document = with_ledger(settings, work)
    if args.out is not None:
        args.out.write_text(as_json(document), encoding="utf-8")
        sys.stdout.write(f"the record of one person written to {args.out}\n")
    elif args.json:
        sys.stdout.write(as_json(document))
    else:
        sys.stdout.write(f"NIK {document['nik']} — "
                         f"{'found' if document['found'] else 'nothing found'} "
                         f"(as of {document['generated_at'].isoformat()})\n")
        for section in SECTIONS:
            rows = document[section]
            sys.stdout.write(f"\n{section}: {len(rows)}\n")
            for row in rows:
                sys.stdout.write(f"  {_json(row)}\n")
    return 0


def handle_purge(args: argparse.Namespace, settings: Settings) -> int:
    from services.cli.errors import CliError

    try:
        programmes = load_programmes(settings.programmes_dir)
    except ProgrammeConfigError as exc:
        raise CliError(str(exc)) from exc

    keys = privacy_keys(settings)

    async def work(connection: asyncpg.Connection) -> Purge:
        if args.dry_run:
            found = await plan(connection, programmes, args.before)
        else:
            found = await purge(connection, programmes, args.before, cli_actor(), keys)
        archived = set() if args.dry_run else set(found.archived)
        tally = NikTally()  # a NIK replaced is named by its pseudonym only
        for nik in {*found.workers, *found.archived} - archived:
            tally.add(nik)
        for nik in archived:
            tally.add(nik_pseudonym(keys, nik))
        await access_log.record(connection, Access(
            actor=cli_actor(), role="operator", channel="cli", what="iuran privacy purge",
            purpose="end of retention (UU 27/2022 art. 43)",
            filters={"before": args.before, "dry_run": args.dry_run}), tally)
        return found

    found = with_ledger(settings, work)
    verb = "would erase" if args.dry_run else "erased"
    sys.stdout.write(
        f"retention ended on or before {found.before.isoformat()} for "
        f"{len(found.workers):,} workers: {verb} name, birth date, phone and address in "
        f"{found.submission_rows:,} submitted rows and the raw bytes of "
        f"{found.dead_letters:,} dead letters\n"
        f"the financial archive ended for {len(found.archived):,} workers: "
        f"{'would replace' if args.dry_run else 'replaced'} their NIK by its keyed pseudonym\n")
    return 0
