"""``iuran bill``: issue the bill of a programme ("tagihan": monthly, or prepaid at
enrolment), list bills, list and refund the credits of deregistered billed months.

A bill is frozen once issued; issuing again bills only what was booked since (a
supplementary bill, sequence 2, 3, ...)."""

from __future__ import annotations

import argparse
import getpass
import sys

import asyncpg

from services.cli import arguments
from services.cli.ledger_db import programme_of, with_ledger
from services.domain.money import rupiah
from services.ledger.bills import Bill, BillError, issue_bill, issue_prepaid_bill
from services.ledger.payments import refund_credit
from services.runtime.settings import Settings

_contribution_id = arguments.identifier("a contribution id")


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser("bill", help="bills to BPJS: issue, list; credits")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    issue = actions.add_parser(
        "issue", help="freeze the bill of a month (monthly billing) or the prepaid bill of a "
                      "day (prepaid billing); again: a supplementary bill")
    issue.add_argument("--programme", required=True, help="programme id, e.g. malang-2025")
    when = issue.add_mutually_exclusive_group(required=True)
    when.add_argument("--period", type=arguments.period,
                      help="monthly billing: the month, YYYY-MM")
    when.add_argument("--on", type=arguments.day,
                      help="prepaid billing: the day it is billed and paid, YYYY-MM-DD")
    issue.add_argument("--by", default=None, help="who issues it (default: your user name)")
    issue.set_defaults(handler=handle_issue)
    listing = actions.add_parser("list", help="the bills issued, with their status")
    listing.add_argument("--programme", default=None)
    listing.add_argument("--period", default=None, type=arguments.period)
    listing.set_defaults(handler=handle_list)
    credits = actions.add_parser("credits", help="credits at BPJS (deregistered billed "
                                                 "months, carried-over payments)")
    credits.add_argument("--programme", default=None)
    credits.set_defaults(handler=handle_credits)
    refund = actions.add_parser("refund-credit",
                                help="refund the credit of a deregistered billed month")
    refund.add_argument("contribution_id", type=_contribution_id)
    refund.add_argument("--reason", required=True, help="e.g. refund letter to BPJS, ref ...")
    refund.add_argument("--by", default=None, help="who decided (default: your user name)")
    refund.set_defaults(handler=handle_refund)


def handle_issue(args: argparse.Namespace, settings: Settings) -> int:
    from services.cli.errors import CliError

    programme = programme_of(settings, args.programme)
    by = args.by or getpass.getuser()

    today = programme.today(settings.now())

    async def work(connection: asyncpg.Connection) -> Bill | None:
        if args.on is not None:
            return await issue_prepaid_bill(connection, programme, args.on, issued_by=by,
                                            today=today)
        return await issue_bill(connection, programme, args.period, issued_by=by, today=today)

    try:
        bill = with_ledger(settings, work)
    except BillError as exc:
        raise CliError(str(exc)) from exc
    when = args.on.isoformat() if args.on is not None else args.period
    if bill is None:
        sys.stdout.write(f"{programme.id} {when}: nothing left to bill\n")
        return 0
    kind = f"{bill.billing} bill" if bill.sequence == 1 else f"supplementary {bill.billing} bill"
    sys.stdout.write(f"{programme.id} {bill.period}: {kind} #{bill.sequence} issued, "
                     f"{bill.workers:,} workers, {bill.lines:,} contributions, "
                     f"{rupiah(bill.amount_idr)}, due {bill.due_date.isoformat()} "
                     f"(bill_id {bill.bill_id})\n")
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
        sys.stdout.write(f"{r['programme']} {r['period']} #{r['sequence']} ({r['billing']}): "
                         f"{r['workers']:,} workers, {r['lines']:,} contributions "
                         f"{r['first_period']}..{r['last_period']}, "
                         f"{rupiah(r['amount_idr'])}, due {r['due_date']}, {r['status']}\n")
    if not rows:
        sys.stdout.write("no bill issued\n")
    return 0


def handle_credits(args: argparse.Namespace, settings: Settings) -> int:
    async def work(connection: asyncpg.Connection) -> list[asyncpg.Record]:
        rows: list[asyncpg.Record] = await connection.fetch(
            """SELECT * FROM finance.credits WHERE $1::text IS NULL OR programme = $1
                ORDER BY programme, recorded_at""", args.programme)
        return rows

    rows = with_ledger(settings, work)
    for r in rows:
        what = (f"contribution {r['contribution_id']} {r['period']}" if r["source"] ==
                "deregistration" else f"payment {r['payment_id']} {r['period']}")
        sys.stdout.write(f"{r['programme']} {what}: {rupiah(r['amount_idr'])}, "
                         f"{r['status']}\n")
    if not rows:
        sys.stdout.write("no credit\n")
    return 0


def handle_refund(args: argparse.Namespace, settings: Settings) -> int:

    async def work(connection: asyncpg.Connection) -> int | None:
        return await refund_credit(connection, args.contribution_id, reason=args.reason,
                                   refunded_by=args.by or getpass.getuser())

    amount = with_ledger(settings, work)
    if amount is None:
        sys.stdout.write(f"the credit of {args.contribution_id} was already refunded\n")
    else:
        sys.stdout.write(f"credit of {rupiah(amount)} refunded ({args.contribution_id})\n")
    return 0
