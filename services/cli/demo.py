"""``iuran demo``: the Malang batch end to end, with progress and a summary."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg
from aiokafka import AIOKafkaConsumer

from schemas.events import (
    TOPIC_PAYMENTS,
    TOPIC_REGISTRATIONS,
    TOPIC_REJECTED,
    PaymentConfirmed,
    RejectedEvent,
    WorkerRegistered,
)
from services.cli import arguments
from services.cli.renew import renew
from services.cli.service import EVERY_SERVICE
from services.cli.up import prepare
from services.demo import bpjs
from services.demo.workers import demo_registrations
from services.domain.money import rupiah
from services.domain.programme import Programme, load_programmes
from services.domain.renewal import renewal_event_id
from services.domain.schedule import derived_id
from services.ledger.bills import issue_prepaid_bill
from services.ledger.renewal import wait_settled
from services.ledger.report import finance_summary, format_finance_summary
from services.runtime.kafka import client_options, publish_all
from services.runtime.settings import Settings
from services.runtime.stack import ServiceProcesses, StackError, http_json, infrastructure


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser(
        "demo", help="publish synthetic registrations, wait until booked, print a summary"
    )
    parser.add_argument("--workers", type=arguments.positive, default=25_808,
                        help="how many workers to register (default %(default)s)")
    parser.add_argument("--programme", default="malang-2025", help="programme id")
    parser.add_argument("--timeout", type=arguments.positive, default=900,
                        help="seconds to wait for the ledger (default %(default)s)")
    parser.add_argument("--renew-to", default="malang-2026", metavar="P2",
                        help="after the batch, renew its workers into this programme (the "
                             "next year; default %(default)s, skipped when not configured; "
                             "'' for none)")
    parser.add_argument("--bpjs-rejects", type=arguments.count, default=0, metavar="N",
                        help="BPJS rejects N workers (their unbilled months are cancelled) "
                             "and discounts one line of its bill, which is flagged and not "
                             "paid (default %(default)s: BPJS verifies everyone)")
    parser.add_argument("--json", action="store_true",
                        help="end with one JSON line of the figures")
    parser.set_defaults(handler=handle)



@dataclass
class Summary:
    programme: str
    registrations_published: int = 0
    registrations_accepted: int = 0
    registrations_rejected: int = 0
    contributions_booked: int = 0  # of this batch, in the ledger
    already_booked: int = 0  # of those, booked before this run (an earlier run's data)
    booked_by_this_run: int = 0
    amount_booked_idr: int = 0
    ledger_contributions_total: int = 0
    ledger_amount_total_idr: int = 0
    budget_idr: int = 0
    budget_remaining_idr: int = 0
    seconds: float = 0.0
    contributions_per_second: float = 0.0
    rejection_codes: dict[str, int] = field(default_factory=dict)
    coverage: dict[str, Any] = field(default_factory=dict)
    finance: dict[str, Any] = field(default_factory=dict)
    renewal: dict[str, Any] = field(default_factory=dict)


async def _pay_prepaid(settings: Settings, pool: asyncpg.Pool, programme: Programme,
                       timeout: float, out: Any, services: ServiceProcesses,
                       discounted: int = 0) -> None:
    """Issue the prepaid bill on the programme's payment day, reconcile BPJS's bill with
    the ledger, publish the payment confirmation (as treasury would) and wait until the
    ledger has settled it."""
    paid_on = programme.billing.paid_on or programme.today()
    async with pool.acquire() as connection:
        # the demo plays the day the year was billed and paid
        bill = await issue_prepaid_bill(connection, programme, paid_on, issued_by="iuran demo",
                                        today=paid_on)
        if bill is not None:
            out.write(f"  prepaid bill #{bill.sequence} issued: {bill.workers:,} workers, "
                      f"{bill.lines:,} months, {rupiah(bill.amount_idr)}\n")
        unpaid = await connection.fetch(
            """SELECT bill_id, period, sequence, amount_idr FROM finance.bills
                WHERE programme = $1 AND billing = 'prepaid' AND status <> 'paid'
                ORDER BY sequence""", programme.id)
    paid_at = datetime(paid_on.year, paid_on.month, paid_on.day, 10, tzinfo=programme.zone)
    reconciled = await bpjs.reconcile_bills(
        settings, pool, programme, [r["bill_id"] for r in unpaid], paid_at, timeout, out,
        services.check_alive, discounted)
    if not reconciled:
        if not discounted:
            raise StackError("BPJS's bill does not reconcile with the ledger: not paid (see "
                             "finance.bpjs_reconciliation)")
        out.write("  BPJS's bill does not reconcile (finance.bpjs_reconciliation): not paid\n")
        return
    for row in unpaid:
        payment = PaymentConfirmed(
            payment_id=derived_id("demo-payment", str(row["bill_id"])),
            programme=programme.id, period=row["period"], amount_idr=row["amount_idr"],
            reference=f"SP2D-{programme.funding_source}-{paid_on.year}-{row['sequence']:04d}",
            paid_at=paid_at)
        await publish_all(settings, TOPIC_PAYMENTS,
                          [(programme.id.encode(), payment.model_dump_json().encode())])
        out.write(f"  payment {payment.reference} of {rupiah(payment.amount_idr)} published "
                  f"to {TOPIC_PAYMENTS}\n")
    out.flush()
    deadline = time.monotonic() + timeout
    while unpaid:
        services.check_alive()
        open_bills = await pool.fetchval(
            """SELECT count(*) FROM finance.bills WHERE bill_id = ANY($1::uuid[])
                  AND status <> 'paid'""", [r["bill_id"] for r in unpaid])
        if open_bills == 0:
            out.write("  prepaid bill settled by the ledger\n")
            break
        if time.monotonic() > deadline:
            raise StackError(f"the ledger settled no prepaid bill within {timeout:.0f}s")
        await asyncio.sleep(0.5)


async def _publish(settings: Settings, events: list[WorkerRegistered], out: Any) -> None:
    def messages() -> Iterator[tuple[bytes, bytes]]:
        for event in events:
            yield event.worker.nik.encode(), event.model_dump_json().encode()

    def progress(sent: int) -> None:
        out.write(f"  published {sent:,} / {len(events):,} registrations\n")
        out.flush()

    await publish_all(settings, TOPIC_REGISTRATIONS, messages(), on_progress=progress)


async def _count_rejections(settings: Settings, ids: set[str], found: dict[str, dict[str, int]],
                            stop: asyncio.Event) -> None:
    consumer = AIOKafkaConsumer(TOPIC_REJECTED, **client_options(settings),
                                group_id=None, auto_offset_reset="earliest")
    await consumer.start()
    try:
        while not stop.is_set():
            batches = await consumer.getmany(timeout_ms=300)
            for records in batches.values():
                for record in records:
                    rejected = RejectedEvent.model_validate_json(record.value or b"")
                    if rejected.event_id in ids:
                        found[rejected.event_id] = {e.code: 1 for e in rejected.errors}
    finally:
        await consumer.stop()


async def _ledger_totals(pool: asyncpg.Pool, programme: str,
                         ids: list[UUID]) -> tuple[int, int, int, int, int]:
    row = await pool.fetchrow(
        """SELECT count(*) AS n, coalesce(sum(amount_idr), 0)::bigint AS idr,
                  count(DISTINCT registration_event_id) AS registrations
             FROM ledger.contributions
            WHERE registration_event_id = ANY($1::uuid[])""", ids)
    total = await pool.fetchrow(
        """SELECT count(*) AS n, coalesce(sum(amount_idr), 0)::bigint AS idr
             FROM ledger.live_contributions
            WHERE programme = $1""", programme)
    return row["n"], row["idr"], row["registrations"], total["n"], total["idr"]


async def _run(settings: Settings, programme: Programme, count: int, timeout: int,
               out: Any, services: ServiceProcesses, rejects: int = 0) -> Summary:
    summary = Summary(programme=programme.id, budget_idr=programme.budget_idr)
    # The batch is the same on every run (derived ids): on data an earlier run filled, its
    # months are booked already, and the ledger books none of them twice.
    events = list(demo_registrations(programme, count))
    event_ids = [event.event_id for event in events]
    assert settings.database_url
    pool = await asyncpg.create_pool(settings.database_url, min_size=1, max_size=2)
    stop = asyncio.Event()
    watcher: asyncio.Task[None] | None = None
    try:
        already = (await _ledger_totals(pool, programme.id, event_ids))[0]
        if already:
            out.write(f"  {already:,} contributions of this batch were already in the ledger "
                      "(an earlier run on this data); none is booked twice\n")
        started = time.monotonic()
        out.write(f"Publishing {count:,} registrations to {TOPIC_REGISTRATIONS} ...\n")
        out.flush()
        await _publish(settings, events, out)
        summary.registrations_published = len(event_ids)
        rejections: dict[str, dict[str, int]] = {}
        watcher = asyncio.create_task(
            _count_rejections(settings, {str(i) for i in event_ids}, rejections, stop))
        months = programme.months
        last_report = 0.0
        while True:
            services.check_alive()
            booked, idr, registrations, total, total_idr = await _ledger_totals(
                pool, programme.id, event_ids)
            expected = (len(event_ids) - len(rejections)) * months
            now = time.monotonic()
            if now - last_report >= 2 or booked >= expected:
                rate = (booked - already) / max(now - started, 1e-9)
                out.write(f"  booked {booked:,} / {expected:,} contributions "
                          f"({booked / max(expected, 1):.0%}), {rate:,.0f}/s, "
                          f"{len(rejections):,} rejected\n")
                out.flush()
                last_report = now
            if booked >= expected:
                break
            if now - started > timeout:
                raise StackError(f"only {booked:,} of {expected:,} contributions booked "
                                 f"after {timeout}s")
            await asyncio.sleep(0.5)
        summary.seconds = round(time.monotonic() - started, 2)
        summary.contributions_booked = booked
        summary.already_booked = already
        summary.booked_by_this_run = booked - already
        summary.amount_booked_idr = idr
        summary.registrations_accepted = registrations
        summary.ledger_contributions_total = total
        summary.ledger_amount_total_idr = total_idr
        summary.budget_remaining_idr = programme.budget_idr - total_idr
        summary.contributions_per_second = round(
            summary.booked_by_this_run / max(summary.seconds, 1e-9), 1)
        verified_on = programme.billing.paid_on or programme.today()
        await bpjs.verify_everyone(
            settings, pool, programme, settings.data_dir.resolve(),
            datetime(verified_on.year, verified_on.month, verified_on.day, 8,
                     tzinfo=programme.zone), timeout, out, services.check_alive, rejects)
        if programme.billing.mode == "prepaid":
            await _pay_prepaid(settings, pool, programme, timeout, out, services,
                               1 if rejects else 0)
        async with pool.acquire() as connection:
            summary.finance = await finance_summary(connection, programme)
    finally:
        stop.set()
        if watcher is not None:
            await watcher
        await pool.close()
    summary.registrations_rejected = len(rejections)
    codes: dict[str, int] = {}
    for found in rejections.values():
        for code in found:
            codes[code] = codes.get(code, 0) + 1
    summary.rejection_codes = codes
    return summary


async def _renew(settings: Settings, source: Programme, target: Programme, count: int,
                 timeout: int, out: Any) -> dict[str, Any]:
    """Renew the batch's workers into ``target`` and wait until the ledger booked or held
    every renewal: the year's figures, from the ledger."""
    known = {e.worker.nik: e.worker for e in demo_registrations(source, count)}
    assert settings.database_url
    out.write(f"Renewing {source.id} into {target.id} ...\n")
    out.flush()
    connection = await asyncpg.connect(settings.database_url)
    try:
        result = await renew(connection, settings, source, target, by="iuran demo",
                             dry_run=False, now=settings.now(), timeout=timeout, known=known)
        ranked = await connection.fetch(
            "SELECT nik FROM ledger.renewal_ranks WHERE programme = $1 AND renewal_of = $2",
            target.id, source.id)
        ids = [renewal_event_id(r["nik"], target.id) for r in ranked]
        await wait_settled(connection, ids, timeout)
        # the renewal as the ledger holds it: the same figures when this run renewed and
        # when an earlier run did (the plan of a run that finds the workers renewed is empty)
        booked_idr, held_idr, first, remaining = await connection.fetchrow(
            """SELECT coalesce(sum(amount_idr) FILTER (WHERE status <> 'held'), 0)::bigint,
                      coalesce(sum(amount_idr) FILTER (WHERE status = 'held'), 0)::bigint,
                      min(period),
                      (SELECT coalesce(sum(remaining_idr), 0)::bigint
                         FROM finance.budget_utilisation WHERE programme = $1)
                 FROM finance.contributions
                WHERE programme = $1 AND registration_event_id = ANY($2::uuid[])
                  AND status <> 'cancelled'""", target.id, ids)
        result.cost_idr, result.waiting_cost_idr = booked_idr, held_idr
        result.first_month, result.room_idr = first, remaining + booked_idr
        covered = await connection.fetchval(
            "SELECT count(DISTINCT nik) FROM ledger.live_contributions WHERE period = $1",
            first) if first else 0
        booked, partly = await connection.fetchrow(
            """SELECT count(*) FILTER (WHERE held = 0), count(*) FILTER (WHERE held > 0)
                 FROM (SELECT nik, count(*) FILTER (WHERE status = 'held') AS held
                         FROM finance.contributions
                        WHERE programme = $1 AND registration_event_id = ANY($2::uuid[])
                          AND status <> 'cancelled'
                        GROUP BY nik
                       HAVING count(*) FILTER (WHERE status <> 'held') > 0) w""",
            target.id, ids)
        held = await connection.fetchval(
            "SELECT count(*) FROM finance.waiting_list WHERE programme = $1 "
            "AND renewal_of = $2", target.id, source.id)
    finally:
        await connection.close()
    coverage = target.coverage
    return {**asdict(result), "booked_workers": booked, "partly_booked_workers": partly,
            "held_workers": held,
            "first_month_covered_city": covered,
            "first_month_ratio": (coverage.baseline_members + covered) / coverage.workforce}


def _coverage(settings: Settings, programme: str, booked: int) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    url = f"http://{settings.http_host}:{settings.projector_port}/coverage"
    latest: dict[str, Any] = {}
    while time.monotonic() < deadline:
        body = http_json(url)
        if isinstance(body, list):
            for snapshot in body:
                if snapshot.get("programme") == programme:
                    latest = snapshot
        # every worker has BPJS's verdict by now: wait for the projector to fold them too
        if latest.get("contributions_booked", -1) >= booked \
                and latest.get("awaiting_bpjs_workers", -1) == 0:
            break
        time.sleep(0.5)
    return latest


def _print_summary(summary: Summary, programme: Programme, out: Any) -> None:
    cov = summary.coverage
    lines = [
        "",
        f"iuran demo — {programme.name}",
        f"  registrations published   {summary.registrations_published:>15,}",
        f"  registrations accepted    {summary.registrations_accepted:>15,}",
        f"  registrations rejected    {summary.registrations_rejected:>15,}"
        + (f"  {summary.rejection_codes}" if summary.rejection_codes else ""),
        f"  contributions booked      {summary.contributions_booked:>15,}",
        f"  amount booked             {rupiah(summary.amount_booked_idr):>15}"
        f"  ({programme.premium.monthly_idr:,} × months × workers)",
        f"  budget {programme.funding_source} {programme.fiscal_year:<9}"
        f"{rupiah(summary.budget_idr):>15}",
        f"  booked in programme       {rupiah(summary.ledger_amount_total_idr):>15}"
        f"  ({summary.ledger_amount_total_idr / max(summary.budget_idr, 1):.1%} of budget)",
        f"  budget remaining          {rupiah(summary.budget_remaining_idr):>15}",
        f"  time                      {summary.seconds:>14,.1f}s" + (
            f"  ({summary.contributions_per_second:,.0f} contributions/s)"
            if summary.booked_by_this_run else
            "  (nothing new to book: the batch was in the ledger already)"),
    ]
    if cov:
        lines += [
            f"  coverage in {cov['headline_period']} (from the ledger)",
            f"    active workers (programme)  {cov['active_workers']:>11,}",
            f"    verified by BPJS (covered)  {cov.get('verified_workers', 0):>11,}",
            f"    awaiting BPJS's verdict     {cov.get('awaiting_bpjs_workers', 0):>11,}",
            f"    awaiting budget             {cov['awaiting_budget_workers']:>11,}"
            f"  ({rupiah(cov['awaiting_budget_idr'])})",
            f"    members no programme pays   {cov['registered_outside_programme']:>11,}"
            f"  (baseline {programme.coverage.baseline_as_of})",
            f"    covered by iuran programmes {cov['covered_in_headline_period']:>11,}",
            f"    Jamsostek members           {cov['members']:>11,}",
            f"    workforce                   {cov['workforce']:>11,}"
            f"  (the source's rough figure: ~{programme.coverage.workforce_rough:,})",
            f"    coverage ratio              {cov['coverage_ratio']:>11.2%}"
            f"  (RPJPD target {cov['target_ratio']:.2%})",
            "    by category: " + ", ".join(
                f"{k} {v['active_workers']:,}" for k, v in cov["by_category"].items()),
            "    by kecamatan: " + ", ".join(
                f"{k} {v['active_workers']:,}" for k, v in cov["by_kecamatan"].items()),
        ]
    if summary.finance:
        lines += format_finance_summary(summary.finance)
    if summary.renewal:
        lines += _renewal_lines(summary.renewal)
    out.write("\n".join(lines) + "\n")


def _renewal_lines(r: dict[str, Any]) -> list[str]:
    return [
        f"  renewal {r['source']} -> {r['target']} (the next year, budget left "
        f"{rupiah(r['room_idr'])})",
        f"    renewed (booked)            {r['booked_workers']:>11,}  "
        f"({rupiah(r['cost_idr'])}, from the month after each worker's last covered month)",
        f"    waiting for budget          {r['held_workers']:>11,}  "
        f"({rupiah(r['waiting_cost_idr'])}, held in priority order"
        + (f"; {r['partly_booked_workers']:,} with the months the room left booked"
           if r["partly_booked_workers"] else "") + ")",
        f"    cost of the renewed year    {rupiah(r['cost_idr']):>11}",
        f"    covered in {r['first_month'] or '-':<7}          "
        f"{r['first_month_covered_city']:>11,}  workers of any programme; coverage "
        f"{r['first_month_ratio']:.2%}",
        "    first month without cover   " + ", ".join(
            f"{month}: {n:,}" for month, n in r["cover_ends"].items())
        + "  (without renewal)",
    ]


def handle(args: argparse.Namespace, settings: Settings) -> int:
    from services.cli.errors import CliError

    programmes = load_programmes(settings.programmes_dir)
    programme = programmes.get(args.programme)
    if programme is None:
        raise CliError(f"unknown programme {args.programme!r}; known: {', '.join(programmes)}")
    out = sys.stdout
    wall = time.monotonic()
    out.write("Starting the broker, PostgreSQL and the services ...\n")
    out.flush()
    with infrastructure(settings) as ready:
        prepare(ready)
        services = ServiceProcesses(ready, EVERY_SERVICE, ready.data_dir.resolve() / "logs")
        services.start()
        try:
            services.wait_ready()
            out.write(f"  ready in {time.monotonic() - wall:.1f}s: {', '.join(EVERY_SERVICE)}\n")
            summary = asyncio.run(
                _run(ready, programme, args.workers, args.timeout, out, services,
                     args.bpjs_rejects))
            summary.coverage = _coverage(ready, programme.id, summary.ledger_contributions_total)
            target = programmes.get(args.renew_to) if args.renew_to else None
            if target is not None and target.id != programme.id:
                summary.renewal = asyncio.run(
                    _renew(ready, programme, target, args.workers, args.timeout, out))
        except StackError as exc:
            raise CliError(str(exc)) from exc
        finally:
            services.stop()
    _print_summary(summary, programme, out)
    if args.json:
        out.write(json.dumps(asdict(summary), default=str) + "\n")
    return 0
