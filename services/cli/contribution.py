"""``iuran contribution``: contributions the ledger refused. ``replay-refused`` books again
the months refused for a configuration reason (a premium the ledger did not know when they
arrived) once the ledger runs with the same programme configuration as this command."""

from __future__ import annotations

import argparse
import sys

import asyncpg

from services.cli.ledger_db import programme_of, with_ledger
from services.ledger import book
from services.ledger.replay import PREMIUM_MISMATCH, Replay, ReplayError, replay_refused
from services.runtime.settings import Settings


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser("contribution", help="refused contributions: replay")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    replay = actions.add_parser(
        "replay-refused", help=f"book again the months refused as {PREMIUM_MISMATCH} once "
                               "the ledger's premiums are the configured ones")
    replay.add_argument("--programme", required=True, help="programme id, e.g. malang-2025")
    replay.set_defaults(handler=handle_replay)


def handle_replay(args: argparse.Namespace, settings: Settings) -> int:
    from services.cli.errors import CliError

    programme = programme_of(settings, args.programme)

    async def work(connection: asyncpg.Connection) -> Replay:
        await book.prepare(connection)
        return await replay_refused(connection, programme)

    try:
        done = with_ledger(settings, work)
    except ReplayError as exc:
        raise CliError(str(exc)) from exc
    for why in done.skipped:
        sys.stderr.write(f"skipped {why}\n")
    sys.stdout.write(f"{programme.id}: {done.schedules} refused schedule(s) replayed: "
                     f"{done.booked} contribution(s) booked, {done.held} held, "
                     f"{done.still_refused} schedule(s) still refused\n")
    return 0
