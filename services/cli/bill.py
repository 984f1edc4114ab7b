"""``iuran bill``: issue the monthly bill ("tagihan") of a programme and month, list bills.

A bill is frozen once issued; issuing again bills only what was booked since (a
supplementary bill, sequence 2, 3, ...)."""

from __future__ import annotations

import argparse
import getpass
import sys

import asyncpg

from services.cli.ledger_db import programme_of, rupiah, with_ledger
from services.domain.periods import PeriodError, parse_period
from services.ledger.bills import Bill, issue_bill
from services.runtime.settings import Settings


def _period(text: str) -> str:
    try:
        parse_period(text)
    except PeriodError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser("bill", help="monthly bills to BPJS: issue, list")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    issue = actions.add_parser("issue", help="freeze the bill of a month (or a supplementary)")
    issue.add_argument("--programme", required=True, help="programme id, e.g. malang-2025")
    issue.add_argument("--period", required=True, type=_period, help="the month, YYYY-MM")
    issue.add_argument("--by", default=None, help="who issues it (default: your user name)")
    issue.set_defaults(handler=handle_issue)
    listing = actions.add_parser("list", help="the bills issued, with their status")
    listing.add_argument("--programme", default=None)
    listing.add_argument("--period", default=None, type=_period)
    listing.set_defaults(handler=handle_list)


def handle_issue(args: argparse.Namespace, settings: Settings) -> int:
    programme = programme_of(settings, args.programme)
    by = args.by or getpass.getuser()

    async def work(connection: asyncpg.Connection) -> Bill | None:
        return await issue_bill(connection, programme, args.period, issued_by=by)

    bill = with_ledger(settings, work)
    if bill is None:
        sys.stdout.write(f"{programme.id} {args.period}: nothing left to bill\n")
        return 0
    kind = "bill" if bill.sequence == 1 else "supplementary bill"
    sys.stdout.write(f"{programme.id} {bill.period}: {kind} #{bill.sequence} issued, "
                     f"{bill.lines:,} contributions, {rupiah(bill.amount_idr)}, due "
                     f"{bill.due_date.isoformat()} (bill_id {bill.bill_id})\n")
    return 0


def handle_list(args: argparse.Namespace, settings: Settings) -> int:
    async def work(connection: asyncpg.Connection) -> list[asyncpg.Record]:
        rows: list[asyncpg.Record] = await connection.fetch(
            """SELECT * FROM finance.bills
                WHERE ($1::text IS NULL OR programme = $1) AND ($2::text IS NULL OR period = $2)
                ORDER BY programme, period, sequence""", args.programme, args.period)
        return rows

    rows = with_ledger(settings, work)
    for r in rows:
        sys.stdout.write(f"{r['programme']} {r['period']} #{r['sequence']}: {r['workers']:,} "
                         f"contributions, {rupiah(r['amount_idr'])}, due {r['due_date']}, "
                         f"{r['status']}\n")
    if not rows:
        sys.stdout.write("no bill issued\n")
    return 0
