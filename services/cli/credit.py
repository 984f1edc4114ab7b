"""``iuran credit``: money BPJS owes back. ``refund-received`` records a refund as the bank
statement shows it: the programme's ``asset:refund_due`` is cleared against cash."""

from __future__ import annotations

import argparse
import getpass
import sys

import asyncpg

from services.cli import arguments
from services.cli.ledger_db import programme_of, with_ledger
from services.domain.money import rupiah
from services.ledger.corrections import RefundReceived, record_refund_received
from services.runtime.settings import Settings


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser("credit", help="money BPJS owes back: record a refund received")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    received = actions.add_parser(
        "refund-received", help="a refund from BPJS on the bank statement: clears the "
                                "refund due against cash")
    received.add_argument("--programme", required=True, help="programme id, e.g. malang-2025")
    received.add_argument("--amount", required=True, type=arguments.rupiah,
                          help="rupiah, e.g. 16800")
    received.add_argument("--bank-reference", required=True,
                          help="the statement line's reference (recorded once)")
    received.add_argument("--on", required=True, type=arguments.day,
                          help="the day it reached the account, YYYY-MM-DD")
    received.add_argument("--by", default=None, help="who records it (default: your user name)")
    received.set_defaults(handler=handle_refund_received)


def handle_refund_received(args: argparse.Namespace, settings: Settings) -> int:

    programme = programme_of(settings, args.programme)

    async def work(connection: asyncpg.Connection) -> RefundReceived | None:
        return await record_refund_received(
            connection, programme.id, args.amount, bank_reference=args.bank_reference,
            received_on=args.on, recorded_by=args.by or getpass.getuser())

    refund = with_ledger(settings, work)
    if refund is None:
        sys.stdout.write(f"bank reference {args.bank_reference} was already recorded\n")
    else:
        sys.stdout.write(f"refund of {rupiah(refund.amount_idr)} from BPJS recorded for "
                         f"{refund.programme}; {rupiah(refund.still_due_idr)} still due\n")
    return 0
