"""``iuran renew --from P1 --to P2 --by NAME [--dry-run] [--json]``: carry the workers of a
programme into the next programme year without a gap.

Every worker of P1 who is still enrolled gets a registration in P2 from the month after the
last month P1 covers, for as many months as P2 allows, published on iuran.registrations.v1
like any OPD's (the validator and the ledger decide it as usual). Event ids derive from the
worker and P2, so a second run renews nobody twice, and a worker P2 already has is left out.
When P2's budget cannot take everyone, P2's ``[renewal] priority`` decides: the workers that
fit are published first, the others wait (held, budget_exceeded) in that order and are booked
in it when the budget is raised.

Exit codes: 0 done (or, with --dry-run, planned); 2 a usage, database or broker error.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Collection, Coroutine, Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, TextIO

import asyncpg

from schemas.events import Worker
from services.cli.errors import CliError
from services.cli.ledger_db import with_ledger
from services.domain.money import rupiah
from services.domain.programme import Programme, ProgrammeConfigError, load_programmes
from services.domain.renewal import cover_ends, describe_priority, plan_renewal
from services.ledger import renewal as stored
from services.publisher.kafka import PublishError, publish_events
from services.runtime.settings import Settings

Sender = Callable[..., Coroutine[Any, Any, int]]


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "renew", help="renew a programme's workers into the next programme year",
        description=__doc__.split("\n\n")[1] if __doc__ else None)
    parser.add_argument("--from", dest="source", required=True, metavar="P1",
                        help="the programme whose cover ends, e.g. malang-2025")
    parser.add_argument("--to", dest="target", required=True, metavar="P2",
                        help="the programme that continues it, e.g. malang-2026")
    parser.add_argument("--by", required=True, metavar="NAME",
                        help="who renews (recorded with the priority order)")
    parser.add_argument("--dry-run", action="store_true",
                        help="print how many would renew, wait and what it costs; publish nothing")
    parser.add_argument("--json", action="store_true", help="print one JSON line instead")
    parser.add_argument("--timeout", type=float, default=300.0, metavar="SECONDS",
                        help="how long to wait for the workers that fit to be booked before "
                             "the waiting ones are published (default %(default)s)")
    parser.set_defaults(handler=handle)


@dataclass
class RenewalResult:
    source: str
    target: str
    dry_run: bool
    workers: int = 0            # of the old programme, still enrolled
    deregistered: int = 0
    renewed: int = 0            # fit the budget: booked
    waiting: int = 0            # do not fit: held, in priority order
    cost_idr: int = 0           # of those that fit
    waiting_cost_idr: int = 0
    room_idr: int = 0           # the new programme's budget left before the renewal
    skipped: dict[str, int] = field(default_factory=dict)
    first_month: str | None = None
    first_month_workers: int = 0    # renewed workers that fit, covered in first_month
    cover_gaps: int = 0             # renewals that start after the cover lapsed
    cover_ends: dict[str, int] = field(default_factory=dict)  # month -> workers, unrenewed
    published: int = 0
    settled_in_time: bool = True
    priority: str = ""


async def renew(
    connection: asyncpg.Connection, settings: Settings, source: Programme, target: Programme,
    *, by: str, dry_run: bool, now: datetime, timeout: float = 300.0,
    send: Sender = publish_events, known: Mapping[str, Worker] | None = None,
    niks: Collection[str] | None = None,
) -> RenewalResult:
    """Plan the renewal from the ledger and, unless ``dry_run``, record the priority order and
    publish: the workers that fit first, then (once those are booked) the ones that wait.
    ``known``: worker records to use where the gateway kept none (e.g. the demo's);
    ``niks``: renew only these workers (None: every worker of ``source``)."""
    workers = await stored.candidates(connection, source.id, niks)
    niks = [c.nik for c in workers]
    found = dict(known or {})
    found.update(await stored.details(connection, niks))
    plan = plan_renewal(source, target, workers, enrolled=await stored.enrolled(
        connection, target.id), details=found, room_idr=await stored.room(connection, target),
        now=now, verified=(await stored.verified(connection, source.id)
                           if target.renewal.requires_bpjs_verification else None))
    first = plan.first_month_covered()
    result = RenewalResult(
        source=source.id, target=target.id, dry_run=dry_run, workers=len(workers),
        deregistered=await stored.deregistered(connection, source.id),
        renewed=len(plan.fitting), waiting=len(plan.waiting),
        cost_idr=plan.cost_idr(fits=True), waiting_cost_idr=plan.cost_idr(fits=False),
        room_idr=plan.room_idr, skipped={k: len(v) for k, v in sorted(plan.skipped.items())},
        first_month=first[0] if first else None, first_month_workers=first[1] if first else 0,
        cover_gaps=plan.cover_gaps(), cover_ends=cover_ends(workers),
        priority=describe_priority(target))
    if dry_run or not plan.renewed:
        return result
    await stored.record_ranks(connection, plan, result.priority, by)
    fitting = [r.event for r in plan.fitting]
    if fitting:
        result.published += await send(fitting, settings)
        result.settled_in_time = await stored.wait_settled(
            connection, [e.event_id for e in fitting], timeout)
    waiting = [r.event for r in plan.waiting]
    if waiting:
        result.published += await send(waiting, settings)
    return result


def describe(result: RenewalResult) -> list[str]:
    verb = "would be" if result.dry_run else "are"
    lines = [
        f"renewal {result.source} -> {result.target}" + (" (dry run)" if result.dry_run else ""),
        f"  workers of {result.source}   {result.workers:,} still enrolled "
        f"({result.deregistered:,} deregistered, not renewed)",
        f"  renewed                {result.renewed:,} {verb} booked from the month after their "
        f"last covered month: {rupiah(result.cost_idr)}",
        f"  waiting for budget     {result.waiting:,} {verb} held (budget_exceeded) in "
        f"priority order: {rupiah(result.waiting_cost_idr)}",
        f"  budget left            {rupiah(result.room_idr)} in {result.target}",
        f"  priority               {result.priority}",
    ]
    if result.skipped:
        lines.append("  not renewed            " + ", ".join(
            f"{reason} {n:,}" for reason, n in result.skipped.items()))
    if result.first_month:
        lines.append(f"  first month {result.first_month}    {result.first_month_workers:,} "
                     f"renewed workers covered")
    lines.append(f"  cover gaps             {result.cover_gaps:,} renewals start 3+ months "
                 "after the cover ended (warning cover_gap)")
    if result.cover_ends:
        lines.append("  cover ends (no renewal) " + ", ".join(
            f"{month}: {n:,}" for month, n in result.cover_ends.items()))
    if not result.dry_run:
        lines.append(f"  published              {result.published:,} registrations")
        if not result.settled_in_time:
            lines.append("  note: the workers that fit were not all booked in time; the "
                         "waiting ones were published anyway (the ledger books them in "
                         "priority order)")
    return lines


def handle(args: argparse.Namespace, settings: Settings, out: TextIO = sys.stdout) -> int:
    try:
        programmes = load_programmes(settings.programmes_dir)
    except ProgrammeConfigError as exc:
        raise CliError(str(exc)) from exc
    for given in (args.source, args.target):
        if given not in programmes:
            raise CliError(f"unknown programme {given!r}; configured: "
                           f"{', '.join(sorted(programmes))}")
    if args.source == args.target:
        raise CliError("--from and --to name the same programme")
    by = args.by.strip()
    if not 1 <= len(by) <= 100:
        raise CliError("--by: a name of 1 to 100 characters")
    if not args.dry_run and not settings.kafka_bootstrap:
        raise CliError("no Kafka to publish to: set IURAN_KAFKA_BOOTSTRAP=host:port, or start "
                       "the embedded stack with `iuran up` (or plan only with --dry-run)")
    source, target = programmes[args.source], programmes[args.target]

    async def work(connection: asyncpg.Connection) -> RenewalResult:
        try:
            return await renew(connection, settings, source, target, by=by,
                               dry_run=args.dry_run, now=settings.now(), timeout=args.timeout)
        except PublishError as exc:
            raise CliError(str(exc)) from exc

    result = with_ledger(settings, work)
    if args.json:
        out.write(json.dumps(asdict(result)) + "\n")
    else:
        out.write("\n".join(describe(result)) + "\n")
    return 0

