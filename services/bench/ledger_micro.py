"""Micro-benchmark of the ledger's booking alone: schedules as the validator emits them (JSON
bytes), decoded and booked straight through the ledger's code on a scratch PostgreSQL, with
no broker. Reports, per batch, the CPU the PostgreSQL backend spent (from /proc of the
backend, by pg_backend_pid()) and the CPU of this process (decode, flatten, COPY encoding,
metrics) in µs per contribution; then again once ``--prefill`` contributions are in the
tables, to show whether the cost grows with them.

    python -m services.bench.ledger_micro [--registrations 2000] [--batches 4]
        [--prefill 1000000] [--url postgresql://...] [--explain]

Without ``--url`` an embedded PostgreSQL starts in a temporary directory. CPU is read per
process, so other load on a shared machine changes wall time, not these figures.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import statistics
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg

from schemas.events import ContributionSchedule
from services.domain.programme import Programme, load_programmes
from services.ledger import book
from services.ledger.budget import ensure_allocation
from services.ledger.migrate import migrate
from services.runtime import metrics
from tests.support.ledger import NikSource, programme_copy, schedule

log = logging.getLogger(__name__)
_TICKS = os.sysconf("SC_CLK_TCK")
PROGRAMMES = Path(__file__).resolve().parents[2] / "deploy" / "programmes"


def backend_cpu_seconds(pid: int) -> float:
    """utime + stime of a process (the PostgreSQL backend of a connection)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


@contextlib.asynccontextmanager
async def _database(url: str | None) -> AsyncIterator[str]:
    if url:
        from tests.support.ledger import scratch_database
        async with scratch_database(url, prefix="iuran_micro") as scratch:
            yield scratch
        return
    from services.runtime.embedded import EmbeddedPostgres
    with tempfile.TemporaryDirectory(prefix="iuran-micro-") as work:
        server = EmbeddedPostgres(Path(work), database="micro")
        try:
            yield server.start()
        finally:
            server.stop()


def _batch(programme: Programme, niks: NikSource, registrations: int,
           periods: list[str]) -> list[bytes]:
    return [schedule(programme, nik, periods).model_dump_json().encode()
            for nik in niks.take(registrations)]


PREFILL = """
INSERT INTO ledger.contributions (contribution_id, nik, period, programme, opd_code,
    category, kecamatan, funding_source, due_date, amount_idr, jkk_idr, jkm_idr,
    schedule_id, registration_event_id, occurred_at, generation, slot, posting_id)
SELECT md5('prefill:' || n)::uuid, lpad((9000000000000000 + n / 12)::text, 16, '0'),
       to_char(date '2025-01-01' + make_interval(months => (n % 12)::int), 'YYYY-MM'),
       $1, 'DISNAKER', 'ojek_online', 'Klojen', $2, date '2025-01-15', 16800, 10000, 6800,
       md5('prefill-schedule:' || n / 12)::uuid, md5('prefill-event:' || n / 12)::uuid,
       now(), 0, 0, $5::uuid
  FROM generate_series($3::bigint, $4::bigint - 1) n
"""
# The accrual that carries one prefilled chunk (as the booking posts one per batch).
PREFILL_ACCRUAL = """
INSERT INTO ledger.transfers (transfer_id, kind, debit_account, credit_account, amount_idr)
VALUES ($2::uuid, 'accrual', 'expense:premium:' || $1, 'liability:bpjs_payable:' || $1,
        16800 * $3::bigint)
"""


async def _prefill(connection: asyncpg.Connection, programme: Programme, count: int) -> None:
    """``count`` contributions of another programme, booked with their accruals (as SQL)."""
    started = time.perf_counter()
    step = 250_000
    for first in range(0, count, step):
        last = min(first + step, count)
        posting = uuid.uuid4()
        async with connection.transaction():
            await connection.execute(PREFILL, programme.id, programme.funding_source, first,
                                     last, posting)
            await connection.execute(PREFILL_ACCRUAL, programme.id, posting, last - first)
    await connection.execute("ANALYZE")
    log.info("prefilled %d contributions in %.1fs", count, time.perf_counter() - started)


async def _run_batch(connection: asyncpg.Connection, values: list[bytes]) -> dict[str, float]:
    pid = connection.get_server_pid()
    pg_before = backend_cpu_seconds(pid)
    py_before = time.process_time()
    wall = time.perf_counter()
    schedules = [ContributionSchedule.model_validate_json(v) for v in values]
    result = await book.book_schedules(connection, schedules)
    metrics_record(result)
    wall = time.perf_counter() - wall
    py = time.process_time() - py_before
    pg = backend_cpu_seconds(pid) - pg_before
    booked = sum(result.booked.values())
    n = sum(result.booked.values()) + sum(result.held.values())
    return {"contributions": n, "booked": booked, "pg_us": pg / max(n, 1) * 1e6,
            "py_us": py / max(n, 1) * 1e6, "wall_s": wall}


def metrics_record(result: book.BatchResult) -> None:
    """What the service observes per batch (services.ledger.service.LedgerService._record)."""
    for programme, count in result.booked.items():
        metrics.CONTRIBUTIONS_BOOKED.labels(programme).inc(count)
        metrics.CONTRIBUTIONS_BOOKED_IDR.labels(programme).inc(result.booked_idr[programme])
    for age in result.event_ages:
        metrics.EVENT_AGE_SECONDS.observe(max(age, 0.0))


async def _phase(connection: asyncpg.Connection, label: str, programme: Programme,
                 niks: NikSource, registrations: int, batches: int) -> list[dict[str, float]]:
    periods = [f"2026-{m:02d}" for m in range(1, 13)]
    rows = []
    for i in range(batches):
        values = _batch(programme, niks, registrations, periods)
        row = await _run_batch(connection, values)
        row["batch"] = i + 1
        rows.append(row)
        log.info("%s batch %d: %d contributions, PostgreSQL %.1f µs, ledger %.1f µs per "
                 "contribution, %.2fs", label, i + 1, row["contributions"], row["pg_us"],
                 row["py_us"], row["wall_s"])
    return rows


async def _explain(connection: asyncpg.Connection, programme: Programme,
                   niks: NikSource, registrations: int) -> None:
    """EXPLAIN (ANALYZE, BUFFERS) of the booking's read of the facts of one batch (the
    worker-months already booked; the writes are COPY)."""
    periods = [f"2026-{m:02d}" for m in range(1, 13)]
    values = _batch(programme, niks, registrations, periods)
    schedules = [ContributionSchedule.model_validate_json(v) for v in values]
    months = {(a.month.nik, a.month.period) for a in book.arrivals(schedules)}
    plan = await connection.fetch("EXPLAIN (ANALYZE, BUFFERS) " + book.BOOKED_FACTS,
                                  [m[0] for m in months], [m[1] for m in months])
    log.info("--- booked facts\n%s", "\n".join(r[0] for r in plan))


def _summary(rows: list[dict[str, float]]) -> dict[str, float]:
    steady = rows[1:] or rows  # the first batch plans the statements
    return {key: round(statistics.median(r[key] for r in steady), 2)
            for key in ("pg_us", "py_us", "wall_s")}


async def main(args: argparse.Namespace) -> dict[str, object]:
    async with _database(args.url) as url:
        connection = await asyncpg.connect(url)
        try:
            await migrate(connection)
            await book.prepare(connection)
            base = load_programmes(PROGRAMMES)["malang-2025"]
            programme = programme_copy(base, budget_idr=10**15, name="micro-bench")
            filler = programme_copy(base, budget_idr=10**15, name="micro-prefill")
            for p in (programme, filler):
                await ensure_allocation(connection, p)
            niks = NikSource()
            results: dict[str, object] = {"registrations_per_batch": args.registrations}
            empty = await _phase(connection, "empty", programme, niks, args.registrations,
                                 args.batches)
            results["empty"] = {"batches": empty, "median": _summary(empty)}
            if args.prefill:
                await _prefill(connection, filler, args.prefill)
                full = await _phase(connection, f"+{args.prefill:,}", programme, niks,
                                    args.registrations, args.batches)
                results["prefilled"] = {"contributions": args.prefill, "batches": full,
                                        "median": _summary(full)}
            if args.explain:
                await _explain(connection, programme, niks, args.registrations)
            return results
        finally:
            await connection.close()


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--registrations", type=int, default=2000)
    parser.add_argument("--batches", type=int, default=4)
    parser.add_argument("--prefill", type=int, default=1_000_000)
    parser.add_argument("--url", default=None, help="a server to create a scratch database on")
    parser.add_argument("--explain", action="store_true")
    parser.add_argument("--out", default=None, help="write the figures as JSON here")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    results = asyncio.run(main(args))
    text = json.dumps(results, indent=2)
    if args.out:
        Path(args.out).write_text(text + "\n")
    log.info("%s", json.dumps({k: v["median"] for k, v in results.items()
                               if isinstance(v, dict)}))


if __name__ == "__main__":
    cli()
