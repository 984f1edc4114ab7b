"""``iuran payment``: corrections of payments received. ``void PAYMENT_ID`` reverses the
receipt of a payment whose money still waits in suspense (e.g. a confirmation sent twice
under two payment ids), with a reason; the journal gets a reversing entry, finance sees it
in finance.payment_voids, finance.discrepancies and finance.cash_reconciliation."""

from __future__ import annotations

import argparse
import getpass
import sys

import asyncpg

from services.cli import arguments
from services.cli.ledger_db import with_ledger
from services.domain.money import rupiah
from services.ledger.corrections import Void, void_payment
from services.runtime.settings import Settings

_payment_id = arguments.identifier("a payment id")


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser("payment", help="payments received: void a receipt")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    void = actions.add_parser("void", help="reverse the receipt of a payment still in "
                                           "suspense (a reversing entry, with a reason)")
    void.add_argument("payment_id", type=_payment_id)
    void.add_argument("--reason", required=True,
                      help="why, e.g. 'confirmed twice: same SP2D as payment ...'")
    void.add_argument("--by", default=None, help="who decided (default: your user name)")
    void.set_defaults(handler=handle_void)


def handle_void(args: argparse.Namespace, settings: Settings) -> int:

    async def work(connection: asyncpg.Connection) -> Void | None:
        return await void_payment(connection, args.payment_id, reason=args.reason,
                                  voided_by=args.by or getpass.getuser())

    voided = with_ledger(settings, work)
    if voided is None:
        sys.stdout.write(f"payment {args.payment_id} was already voided\n")
    else:
        sys.stdout.write(f"payment {voided.payment_id} of {voided.programme} voided: "
                         f"{rupiah(voided.amount_idr)} back to cash\n")
    return 0
