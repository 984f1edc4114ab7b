"""``iuran discrepancy``: list payment discrepancies, record how a person resolved one."""

from __future__ import annotations

import argparse
import getpass
import sys
import uuid

import asyncpg

from services.cli.ledger_db import rupiah, with_ledger
from services.ledger.payments import resolve_discrepancy
from services.runtime.settings import Settings


def _uuid(text: str) -> uuid.UUID:
    try:
        return uuid.UUID(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a discrepancy id (UUID)") from None


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser("discrepancy", help="payment discrepancies: list, resolve")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    listing = actions.add_parser("list", help="open discrepancies (--all for resolved too)")
    listing.add_argument("--all", action="store_true")
    listing.set_defaults(handler=handle_list)
    resolve = actions.add_parser("resolve", help="record the resolution of a discrepancy")
    resolve.add_argument("discrepancy_id", type=_uuid)
    resolve.add_argument("--resolution", required=True,
                         help="what was done (e.g. refund requested from BPJS, ref ...)")
    resolve.add_argument("--by", default=None, help="who resolved it (default: your user)")
    resolve.set_defaults(handler=handle_resolve)


def handle_list(args: argparse.Namespace, settings: Settings) -> int:
    async def work(connection: asyncpg.Connection) -> list[asyncpg.Record]:
        rows: list[asyncpg.Record] = await connection.fetch(
            """SELECT * FROM finance.discrepancies WHERE $1 OR status = 'open'
                ORDER BY recorded_at, discrepancy_id""", args.all)
        return rows

    rows = with_ledger(settings, work)
    for r in rows:
        sys.stdout.write(f"{r['discrepancy_id']} {r['status']} {r['programme']} {r['period']} "
                         f"{r['kind']}: paid {rupiah(r['paid_idr'])}, expected "
                         f"{rupiah(r['expected_idr'])}, reference {r['reference']}\n")
    if not rows:
        sys.stdout.write("no open discrepancy\n")
    return 0


def handle_resolve(args: argparse.Namespace, settings: Settings) -> int:
    from services.cli.errors import CliError

    async def work(connection: asyncpg.Connection) -> bool:
        try:
            return await resolve_discrepancy(
                connection, args.discrepancy_id, resolution=args.resolution,
                resolved_by=args.by or getpass.getuser())
        except asyncpg.ForeignKeyViolationError:
            raise CliError(f"no discrepancy {args.discrepancy_id}") from None

    if with_ledger(settings, work):
        sys.stdout.write(f"discrepancy {args.discrepancy_id} resolved\n")
    else:
        sys.stdout.write(f"discrepancy {args.discrepancy_id} was already resolved\n")
    return 0
