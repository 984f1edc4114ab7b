"""``iuran discrepancy``: list payment discrepancies (their money waits in the suspense
account), resolve one by moving its money: apply it to a bill, refund it, carry it over."""

from __future__ import annotations

import argparse
import getpass
import sys

import asyncpg

from services.cli import arguments
from services.cli.ledger_db import with_ledger
from services.domain.money import rupiah
from services.ledger.payments import (
    APPLY,
    CARRY_OVER,
    REFUND,
    Resolution,
    resolve_discrepancy,
)
from services.runtime.settings import Settings

_discrepancy_id = arguments.identifier("a discrepancy id")


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser("discrepancy", help="payment discrepancies: list, resolve")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    listing = actions.add_parser("list", help="open discrepancies (--all for resolved too)")
    listing.add_argument("--all", action="store_true")
    listing.set_defaults(handler=handle_list)
    resolve = actions.add_parser(
        "resolve", help="move the money of a discrepancy out of suspense, with the reason")
    resolve.add_argument("discrepancy_id", type=_discrepancy_id)
    how = resolve.add_mutually_exclusive_group(required=True)
    how.add_argument("--apply-to", type=_discrepancy_id, metavar="BILL_ID",
                     help="settle this open bill with the payment")
    how.add_argument("--refund", action="store_true", help="BPJS refunds all of it")
    how.add_argument("--carry-over", action="store_true",
                     help="kept at BPJS as a credit of the programme")
    resolve.add_argument("--rest", choices=(REFUND, CARRY_OVER), default=None,
                         help="with --apply-to: what becomes of the money left over")
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
                         f"{rupiah(r['expected_idr'])}, in suspense "
                         f"{rupiah(r['unapplied_idr'])}, reference {r['reference']}\n")
    if not rows:
        sys.stdout.write("no open discrepancy\n")
    return 0


def handle_resolve(args: argparse.Namespace, settings: Settings) -> int:
    from services.cli.errors import CliError

    action = APPLY if args.apply_to else REFUND if args.refund else CARRY_OVER
    if args.rest and action != APPLY:
        raise CliError("--rest goes with --apply-to")

    async def work(connection: asyncpg.Connection) -> Resolution | None:
        return await resolve_discrepancy(
            connection, args.discrepancy_id, resolution=args.resolution,
            resolved_by=args.by or getpass.getuser(), action=action, bill_id=args.apply_to,
            rest=args.rest)

    done = with_ledger(settings, work)
    if done is None:
        sys.stdout.write(f"discrepancy {args.discrepancy_id} was already resolved\n")
        return 0
    sys.stdout.write(f"discrepancy {args.discrepancy_id} resolved: applied "
                     f"{rupiah(done.applied_idr)}, refunded {rupiah(done.refunded_idr)}, "
                     f"carried over {rupiah(done.carried_over_idr)}\n")
    return 0
