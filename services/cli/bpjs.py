"""``iuran bpjs``: the loop with BPJS Ketenagakerjaan (docs/bpjs.md).

* ``submission --programme P --out FILE.xlsx|csv``: the collective-registration file of the
  workers not submitted yet (what was submitted is recorded; a second run lists only new
  workers).
* ``import FILE --programme P``: BPJS's verification result (CSV/XLSX) as verdict events on
  iuran.bpjs.verifications.v1, one line per bad row; the other rows are published.
* ``bill import FILE --programme P``: BPJS's bill (CSV/XLSX) as bills on iuran.bpjs.bills.v1.
* ``announce [--programme P]``: every worker's standing verdict to the ledger's outbox again,
  for coverage (once, after the upgrade that made coverage count verdicts).

Exit codes: 0 every row taken; 1 some rows are wrong (the others were published); 2 a usage,
file or broker error.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import asyncpg
from pydantic import BaseModel

from schemas.events import TOPIC_BPJS_BILLS, TOPIC_BPJS_VERIFICATIONS
from services.adapters.bpjs_files import file_format, write_rows
from services.adapters.tables import read_table
from services.bpjs import files
from services.bpjs.submission import HEADERS, Submission, submit
from services.cli.errors import CliError
from services.cli.ledger_db import programme_of, with_ledger
from services.domain.sheet import TableError
from services.ledger import bpjs_verdicts
from services.privacy import access_log
from services.privacy.access_log import Access, NikTally, cli_actor
from services.runtime.kafka import ensure_topics, publish_all
from services.runtime.settings import Settings

MAX_PRINTED_ROWS = 50


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser("bpjs", help="BPJS: submission file, verdicts and bills in")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    submission = actions.add_parser(
        "submission", help="write the collective-registration file of the workers not "
                           "submitted to BPJS yet (and record them as submitted)")
    submission.add_argument("--programme", required=True, metavar="ID")
    submission.add_argument("--out", required=True, type=Path, metavar="FILE",
                            help="FILE.xlsx or FILE.csv")
    submission.add_argument("--json", action="store_true",
                            help="print a JSON summary instead of a sentence")
    submission.add_argument("--purpose", default=None,
                            help="why personal data is read (recorded in the access log)")
    submission.set_defaults(handler=handle_submission)

    verdicts = actions.add_parser(
        "import", help="publish BPJS's verification result (CSV/XLSX) as verdict events")
    verdicts.add_argument("file", type=Path, metavar="FILE")
    verdicts.add_argument("--programme", required=True, metavar="ID")
    verdicts.add_argument("--sheet", metavar="NAME", help="XLSX sheet (default: the first)")
    verdicts.set_defaults(handler=handle_import)

    bill = actions.add_parser("bill", help="BPJS's bills")
    bill_actions = bill.add_subparsers(dest="bill_action", metavar="ACTION", required=True)
    bill_import = bill_actions.add_parser(
        "import", help="publish BPJS's bill (CSV/XLSX) for reconciliation")
    bill_import.add_argument("file", type=Path, metavar="FILE")
    bill_import.add_argument("--programme", required=True, metavar="ID")
    bill_import.add_argument("--sheet", metavar="NAME", help="XLSX sheet (default: the first)")
    bill_import.set_defaults(handler=handle_bill_import)

    announce = actions.add_parser(
        "announce", help="send every worker's standing BPJS verdict to coverage again "
                         "(through the ledger's outbox)")
    announce.add_argument("--programme", metavar="ID", help="only this programme")
    announce.set_defaults(handler=handle_announce)


def handle_submission(args: argparse.Namespace, settings: Settings) -> int:
    programme = programme_of(settings, args.programme)
    if file_format(args.out) is None:
        raise CliError(f"{args.out}: name the file .xlsx or .csv")
    if not args.out.parent.is_dir():
        raise CliError(f"{args.out.parent}: no such folder")
    today = programme.today(settings.now())

    async def work(connection: asyncpg.Connection) -> Submission:
        made = await submit(connection, programme.id, file_name=args.out.name,
                            submitted_by=cli_actor(), today=today)
        tally = NikTally()
        for row in made.rows:
            tally.add(row[1])
        await access_log.record(connection, Access(
            actor=cli_actor(), role="operator", channel="cli",
            what="iuran bpjs submission", purpose=args.purpose or
            "collective registration of the programme's workers at BPJS Ketenagakerjaan",
            filters={"programme": programme.id}), tally)
        return made

    made = with_ledger(settings, work)
    try:
        write_rows(args.out, HEADERS, made.rows)
    except OSError as exc:
        raise CliError(f"cannot write {args.out}: {exc.strerror}") from exc
    if args.json:
        sys.stdout.write(json.dumps({"submission_id": str(made.submission_id),
                                     "programme": programme.id, "workers": len(made.rows),
                                     "file": str(args.out)}) + "\n")
    else:
        sys.stdout.write(f"submission {made.submission_id}: {len(made.rows):,} worker(s) of "
                         f"{programme.id} written to {args.out}\n")
    return 0


def _read(args: argparse.Namespace, settings: Settings, reader: Any) -> files.Read:
    programme = programme_of(settings, args.programme)
    if not settings.kafka_bootstrap:
        raise CliError("no Kafka to publish to: set IURAN_KAFKA_BOOTSTRAP=host:port, or "
                       "start the embedded stack with `iuran up`")
    try:
        table = read_table(args.file, sheet=args.sheet)
        read: files.Read = reader(table, programme.id, programme.zone)
    except TableError as exc:
        raise CliError(str(exc)) from exc
    if read.rows == 0:
        raise CliError(f"{args.file}: no rows below the header (row {table.header_row})")
    for error in read.errors[:MAX_PRINTED_ROWS]:
        sys.stderr.write(error.line() + "\n")
    hidden = len(read.errors) - MAX_PRINTED_ROWS
    if hidden > 0:
        sys.stderr.write(f"... and {hidden} more wrong row(s)\n")
    return read


def _publish(settings: Settings, topic: str, events: list[BaseModel],
             key: Any) -> int:
    async def send() -> int:
        await ensure_topics(settings, (topic,))
        return await publish_all(
            settings, topic, ((key(e).encode(), e.model_dump_json().encode()) for e in events))

    if not events:
        return 0
    try:
        return asyncio.run(send())
    except Exception as exc:  # the broker's errors are many; each is one line here
        raise CliError(f"publishing to {topic} failed ({type(exc).__name__}: {exc}); "
                       "importing the same file again is safe") from exc


def handle_import(args: argparse.Namespace, settings: Settings) -> int:
    read = _read(args, settings, files.read_verifications)
    sent = _publish(settings, TOPIC_BPJS_VERIFICATIONS, read.events, lambda e: e.nik)
    verified = sum(1 for e in read.events if e.status == "verified")
    sys.stdout.write(f"published {sent} verdict(s) to {TOPIC_BPJS_VERIFICATIONS} "
                     f"({verified} verified, {sent - verified} rejected)")
    sys.stdout.write(f"; {len(read.errors)} row(s) wrong.\n" if read.errors else ".\n")
    return 1 if read.errors else 0


def handle_bill_import(args: argparse.Namespace, settings: Settings) -> int:
    read = _read(args, settings, files.read_bill)
    sent = _publish(settings, TOPIC_BPJS_BILLS, read.events, lambda e: e.bpjs_bill_id)
    lines = sum(len(e.lines) for e in read.events)
    sys.stdout.write(f"published {sent} bill(s) with {lines} line(s) to {TOPIC_BPJS_BILLS}")
    sys.stdout.write(f"; {len(read.errors)} row(s) wrong.\n" if read.errors else ".\n")
    return 1 if read.errors else 0


def handle_announce(args: argparse.Namespace, settings: Settings) -> int:
    count = with_ledger(settings, lambda connection: bpjs_verdicts.announce_standing(
        connection, args.programme))
    of = f" of {args.programme}" if args.programme else ""
    sys.stdout.write(f"announced {count} standing verdict(s){of} to the ledger's outbox.\n")
    return 0
