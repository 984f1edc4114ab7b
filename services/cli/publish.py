"""``iuran publish FILE --opd CODE --programme ID``: an OPD's CSV/XLSX of workers becomes
registration events on Kafka, after every row passed the programme's rules locally.

Exit codes: 0 every row published (or, with --dry-run, would be); 1 some rows are wrong
(nothing published, unless --skip-invalid published the others); 2 a usage, file or
broker error.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable, Coroutine, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from schemas.events import TOPIC_REGISTRATIONS, WorkerRegistered
from services.adapters.tables import read_table
from services.cli.errors import CliError
from services.domain.places import canonical_opd
from services.domain.programme import ProgrammeConfigError, load_programmes
from services.domain.rows import UploadPlan, check_columns, plan_upload
from services.domain.sheet import TableError
from services.publisher.kafka import PublishError, publish_events
from services.publisher.progress import ProgressBar
from services.publisher.rejects import default_rejects_path, describe, write_rejects
from services.runtime.settings import Settings

MAX_PRINTED_ROWS = 50

Sender = Callable[..., Coroutine[Any, Any, int]]


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "publish",
        help="publish an OPD's CSV/XLSX of workers as registration events",
        description=(
            "Check every row of FILE (CSV or XLSX with the columns of "
            "deploy/templates/registrations-template.csv) against the programme's rules, "
            "then publish one registration event per row. Nothing is published while any "
            "row is wrong, unless --skip-invalid. Uploading the same file again books "
            "nothing twice: event ids are derived from the file's content."
        ),
    )
    parser.add_argument("file", type=Path, metavar="FILE", help="the .csv or .xlsx file")
    parser.add_argument("--opd", required=True, metavar="CODE", help="the OPD that registers")
    parser.add_argument("--programme", required=True, metavar="ID", help="e.g. malang-2025")
    parser.add_argument("--sheet", metavar="NAME", help="XLSX sheet (default: the first)")
    parser.add_argument(
        "--skip-invalid", action="store_true",
        help="publish the valid rows and write the others to the rejects file",
    )
    parser.add_argument(
        "--rejects-out", type=Path, metavar="PATH",
        help="where to write the wrong rows with an errors column "
        "(default with --skip-invalid: FILE.rejected.csv beside FILE)",
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="check the rows, publish nothing (no broker)"
    )
    parser.set_defaults(handler=run)


def run(
    args: argparse.Namespace,
    settings: Settings,
    *,
    send: Sender = publish_events,
    out: TextIO | None = None,
    err: TextIO | None = None,
    now: datetime | None = None,
) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    moment = now or settings.now()
    try:
        programmes = load_programmes(settings.programmes_dir)
    except ProgrammeConfigError as exc:
        raise CliError(f"programme configuration: {exc}") from exc
    programme = programmes.get(args.programme)
    if programme is None:
        raise CliError(
            f"unknown programme {args.programme!r}; configured: {', '.join(sorted(programmes))}"
        )
    opd = canonical_opd(programme, args.opd)
    if opd is None:
        raise CliError(
            f"OPD {args.opd!r} may not register in {programme.id}; "
            f"allowed: {', '.join(sorted(programme.opds))}"
        )
    if not args.dry_run and not settings.kafka_bootstrap:
        raise CliError(
            "no Kafka to publish to: set IURAN_KAFKA_BOOTSTRAP=host:port, or start the "
            "embedded stack with `iuran up` (or check the file only with --dry-run)"
        )
    try:
        table = read_table(args.file, sheet=args.sheet)
        ignored = check_columns(table)
    except TableError as exc:
        raise CliError(str(exc)) from exc
    if not table.rows:
        raise CliError(f"{args.file}: no worker rows below the header (row {table.header_row})")
    if ignored:
        err.write(f"note: ignored column(s): {', '.join(ignored)}\n")

    bar = ProgressBar("checking  ", len(table.rows), err)
    plan = plan_upload(
        table, programme, opd, today=programme.today(moment), occurred_at=moment,
        on_row=bar.update,
    )
    bar.close()
    _report_rows(plan, err)
    rejects_path = args.rejects_out
    if plan.rejected and rejects_path is None and args.skip_invalid:
        rejects_path = default_rejects_path(args.file)
    if plan.rejected and rejects_path is not None:
        try:
            count = write_rejects(rejects_path, table, plan.rejected)
        except OSError as exc:
            raise CliError(f"cannot write the rejected rows to {rejects_path}: "
                           f"{exc.strerror}; choose another place with --rejects-out") from exc
        err.write(f"wrote {count} rejected row(s) with their errors to {rejects_path}\n")

    total = len(table.rows)
    if plan.rejected and not args.skip_invalid:
        out.write(
            f"{len(plan.rejected)} of {total} row(s) are wrong: nothing was published. Fix "
            "them and upload again, or use --skip-invalid to publish the others.\n"
        )
        return 1
    where = f"OPD {opd}, programme {programme.id}"
    if args.dry_run:
        out.write(f"dry run: {len(plan.accepted)} of {total} row(s) would be published "
                  f"({where}).\n")
        return 1 if plan.rejected else 0
    sent = _publish(plan.events, settings, send, err) if plan.accepted else 0
    out.write(f"published {sent} registration(s) to {TOPIC_REGISTRATIONS} ({where})")
    out.write(f"; {len(plan.rejected)} row(s) skipped.\n" if plan.rejected else ".\n")
    return 1 if plan.rejected else 0


def _report_rows(plan: UploadPlan, err: TextIO) -> None:
    for item in plan.rejected[:MAX_PRINTED_ROWS]:
        err.write(f"row {item.number}: {describe(item.errors)}\n")
    hidden = len(plan.rejected) - MAX_PRINTED_ROWS
    if hidden > 0:
        err.write(f"... and {hidden} more wrong row(s); --rejects-out PATH lists them all\n")


def _publish(
    events: Sequence[WorkerRegistered], settings: Settings, send: Sender, err: TextIO
) -> int:
    bar = ProgressBar("publishing", len(events), err)
    try:
        return asyncio.run(send(events, settings, on_sent=bar.update))
    except PublishError as exc:
        raise CliError(
            f"{exc}; {exc.sent} of {len(events)} event(s) were acknowledged. Uploading the "
            "same file again is safe: nothing is booked twice"
        ) from exc
    finally:
        bar.close()
