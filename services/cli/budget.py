"""``iuran budget``: show the budget utilisation, raise an allocation (recorded, with a
reason; the held contributions that now fit are booked, oldest first)."""

from __future__ import annotations

import argparse
import getpass
import sys

import asyncpg

from services.cli import arguments
from services.cli.ledger_db import programme_of, with_ledger
from services.domain.money import rupiah
from services.ledger.budget import BudgetError, ensure_allocation, raise_allocation
from services.runtime.settings import Settings


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser("budget", help="budget allocations: show, raise")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    show = actions.add_parser("show", help="allocated, booked, paid, held and remaining")
    show.set_defaults(handler=handle_show)
    up = actions.add_parser(
        "raise", help="raise an allocation by an amount (recorded with the reason)")
    up.add_argument("--programme", required=True, help="programme id, e.g. malang-2025")
    up.add_argument("--amount", required=True, type=arguments.rupiah,
                    help="rupiah to add to the allocation, e.g. 100_000_000")
    up.add_argument("--reason", required=True,
                    help="why (e.g. the APBD change that decided it)")
    up.add_argument("--by", default=None, help="who decided (default: your user name)")
    up.add_argument("--funding-source", default=None,
                    help="only needed when the programme has several")
    up.set_defaults(handler=handle_raise)


def _print_utilisation(rows: list[asyncpg.Record]) -> None:
    out = sys.stdout
    for r in rows:
        out.write(f"{r['programme']} {r['funding_source']} {r['fiscal_year']}: "
                  f"allocated {rupiah(r['allocated_idr'])}, booked {rupiah(r['booked_idr'])}, "
                  f"paid {rupiah(r['paid_idr'])}, held {rupiah(r['held_idr'])} "
                  f"({r['held_contributions']:,} contributions), "
                  f"remaining {rupiah(r['remaining_idr'])}\n")
    if not rows:
        out.write("no budget allocation yet (the ledger creates them on start)\n")


def handle_show(args: argparse.Namespace, settings: Settings) -> int:
    async def work(connection: asyncpg.Connection) -> list[asyncpg.Record]:
        rows: list[asyncpg.Record] = await connection.fetch(
            "SELECT * FROM finance.budget_utilisation ORDER BY programme, funding_source")
        return rows

    _print_utilisation(with_ledger(settings, work))
    return 0


def handle_raise(args: argparse.Namespace, settings: Settings) -> int:
    from services.cli.errors import CliError

    programme = programme_of(settings, args.programme)
    by = args.by or getpass.getuser()

    async def work(connection: asyncpg.Connection) -> tuple[int, int, int, int]:
        await ensure_allocation(connection, programme, changed_by=by)
        previous, new, release = await raise_allocation(
            connection, programme=programme.id, amount_idr=args.amount, reason=args.reason,
            changed_by=by, funding_source=args.funding_source)
        return previous, new, release.booked, release.booked_idr

    try:
        previous, new, booked, booked_idr = with_ledger(settings, work)
    except BudgetError as exc:
        raise CliError(str(exc)) from exc
    sys.stdout.write(f"{programme.id}: allocation raised from {rupiah(previous)} to "
                     f"{rupiah(new)}; {booked:,} held contributions booked "
                     f"({rupiah(booked_idr)})\n")
    return 0
