"""``iuran export VIEW --format csv|xlsx --out FILE``: a finance view to a file, streamed
(server-side cursor; XLSX in openpyxl's write-only mode). ``--masked`` writes what a reader
without personal-data access may hold: NIKs masked, ids derived from a NIK pseudonymised."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

import asyncpg

from services.cli import arguments
from services.cli.ledger_db import with_ledger
from services.ledger import export
from services.ledger.views import VIEWS, ViewError, select
from services.privacy import access_log
from services.privacy.access_log import Access, cli_actor
from services.privacy.keys import privacy_keys
from services.privacy.masking import row_mask
from services.runtime.settings import Settings, SettingsError

_FILTERS = ("programme", "period_from", "period_to", "opd_code", "category", "kecamatan",
            "status", "nik")


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser("export", help="write a finance view to a CSV or XLSX file")
    parser.add_argument("view", choices=sorted(VIEWS), help="the finance view")
    parser.add_argument("--format", choices=export.FORMATS, default=None,
                        help="csv or xlsx (default: from the file name)")
    parser.add_argument("--out", required=True, type=Path, help="the file to write")
    parser.add_argument("--programme")
    parser.add_argument("--period-from", type=arguments.period, help="first month, YYYY-MM")
    parser.add_argument("--period-to", type=arguments.period, help="last month, YYYY-MM")
    parser.add_argument("--opd", dest="opd_code")
    parser.add_argument("--category")
    parser.add_argument("--kecamatan")
    parser.add_argument("--status")
    parser.add_argument("--nik")
    parser.add_argument("--masked", action="store_true",
                        help="mask NIKs and pseudonymise ids derived from them (for readers "
                             "without personal-data access)")
    parser.add_argument("--purpose", default="",
                        help="why the personal data is read (kept in the access log)")
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace, settings: Settings) -> int:
    from services.cli.errors import CliError

    spec = VIEWS[args.view]
    fmt = args.format or args.out.suffix.lstrip(".").lower()
    if fmt not in export.FORMATS:
        raise CliError("say --format csv or --format xlsx (or name the file .csv / .xlsx)")
    filters = {name: getattr(args, name) for name in _FILTERS}
    if filters["status"] is not None and filters["status"] not in spec.statuses:
        raise CliError(f"status of finance.{spec.name} is one of "
                       f"{', '.join(sorted(spec.statuses)) or '(none)'}")
    try:
        sql, params = select(spec, filters)
    except ViewError as exc:
        raise CliError(str(exc)) from exc
    try:
        mask = row_mask(privacy_keys(settings)) if args.masked else None
    except SettingsError as exc:
        raise CliError(str(exc)) from exc

    async def work(connection: asyncpg.Connection) -> int:
        counter = export.Counter()
        chunks = export.counted(export.fetch_chunks(connection, sql, params), counter)
        try:
            if fmt == "xlsx":
                await export.write_xlsx(chunks, spec.columns, args.out, spec.name, mask)
            else:
                stream = await asyncio.to_thread(args.out.open, "wb")
                try:
                    async for piece in export.csv_stream(chunks, spec.columns, mask):
                        await asyncio.to_thread(stream.write, piece)
                finally:
                    stream.close()
        finally:
            if spec.personal:
                await access_log.record(connection, Access(
                    actor=cli_actor(), role="operator", channel="export",
                    what=f"iuran export {spec.name}", purpose=args.purpose,
                    filters=filters, masked=args.masked), counter.niks)
        return counter.rows

    rows = with_ledger(settings, work)
    sys.stdout.write(f"finance.{spec.name}: {rows:,} rows written to {args.out}\n")
    return 0
