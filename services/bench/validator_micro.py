"""In-process micro-benchmark of the validator's work per registration, by stage.

``python -m services.bench.validator_micro [--count N] [--batch 500] [--database-url URL]``

Process CPU time (``time.process_time``, so other work on a shared machine counts little)
over the demo registrations, per stage: decode, the rules, reading a stored state, the
whole decision (rules and schedule included), encoding the outputs and the new state, and
one batch's transaction against a real PostgreSQL (``IURAN_DATABASE_URL`` or
``--database-url``, else an embedded server in a temporary folder). Each stage runs three
times over the same messages; the best run is printed, in µs per registration.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import asyncpg

from services.bench.workload import registrations
from services.domain.enrolment import WorkerState, empty_state
from services.domain.programme import Programme, load_programmes
from services.domain.rules import check_registration
from services.ledger.migrate import migrate
from services.validator import registry
from services.validator.app import encode_outputs
from services.validator.process import Incoming, Source, decide_message, read_message
from services.validator.service import tune_gc

log = logging.getLogger(__name__)

PROGRAMMES = Path(__file__).resolve().parents[2] / "deploy" / "programmes"
TOPIC = "iuran.registrations.v1"


def _best(runs: int, work: Callable[[], object]) -> float:
    best = float("inf")
    for _ in range(runs):
        started = time.process_time()
        work()
        best = min(best, time.process_time() - started)
    return best


def pure_stages(programmes: dict[str, Programme], messages: list[tuple[bytes, bytes]],
                runs: int = 3) -> dict[str, float]:
    """CPU seconds of each pure stage over ``messages`` (best of ``runs``)."""
    programme = next(iter(programmes.values()))
    sources = [Source(TOPIC, 0, i) for i in range(len(messages))]
    incoming = [read_message(k, v, s) for (k, v), s in zip(messages, sources, strict=True)]
    today = incoming[0].event.occurred_at.date()  # type: ignore[union-attr]
    outcomes = [decide_message(i, empty_state(), programmes) for i in incoming]
    stored = [(o.state.version, registry.dump_state(o.state)) for o in outcomes
              if o.state is not None]
    return {
        "decode": _best(runs, lambda: [read_message(k, v, s) for (k, v), s
                                       in zip(messages, sources, strict=True)]),
        "rules": _best(runs, lambda: [check_registration(i.event, programme, today)  # type: ignore[arg-type]
                                      for i in incoming]),
        "state read": _best(runs, lambda: [registry.load_state(d, v) for v, d in stored]),
        "decide (rules + schedule)": _best(
            runs, lambda: [decide_message(i, empty_state(), programmes) for i in incoming]),
        "state write": _best(runs, lambda: [registry.dump_state(o.state) for o in outcomes
                                            if o.state is not None]),
        "encode outputs": _best(runs, lambda: encode_outputs(outcomes)),
    }


async def batch_stage(url: str, programmes: dict[str, Programme],
                      messages: list[tuple[bytes, bytes]], batch: int) -> tuple[float, float]:
    """(CPU seconds, wall seconds) of ``registry.decide_batch`` over ``messages`` in batches
    of ``batch``: the decisions and the client side of their SQL."""
    connection = await asyncpg.connect(url)
    try:
        await migrate(connection)
        await connection.execute("TRUNCATE registry.worker_state, registry.decisions")

        def decide(incoming: Incoming, state: WorkerState) -> Any:
            return decide_message(incoming, state, programmes)

        chunks = [[read_message(k, v, Source(TOPIC, 0, n + i))
                   for i, (k, v) in enumerate(messages[n:n + batch])]
                  for n in range(0, len(messages), batch)]
        cpu, wall = time.process_time(), time.perf_counter()
        for chunk in chunks:
            await registry.decide_batch(connection, chunk, decide)
        return time.process_time() - cpu, time.perf_counter() - wall
    finally:
        await connection.close()


def _database(url: str | None, folder: Path) -> tuple[str, Any]:
    if url:
        return url, None
    from services.runtime.embedded import EmbeddedPostgres

    server = EmbeddedPostgres(folder, database="iuran_micro")
    return server.start(), server


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=5000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--no-sql", action="store_true", help="leave out the SQL stage")
    parser.add_argument("--default-gc", action="store_true",
                        help="keep Python's GC thresholds (default: the validator's)")
    args = parser.parse_args(argv)

    programmes = load_programmes(PROGRAMMES)
    programme = next(iter(programmes.values()))
    messages = [(e.worker.nik.encode(), e.model_dump_json().encode())
                for e in registrations(programme, 0, args.count, namespace="micro")]
    if not args.default_gc:
        tune_gc()
    us = 1e6 / len(messages)
    lines = [f"{name:<28}{seconds * us:8.1f} µs" for name, seconds
             in pure_stages(programmes, messages).items()]
    if not args.no_sql:
        with tempfile.TemporaryDirectory(prefix="iuran-micro-") as folder:
            url, server = _database(args.database_url or os.environ.get("IURAN_DATABASE_URL"),
                                    Path(folder))
            try:
                cpu, wall = asyncio.run(batch_stage(url, programmes, messages, args.batch))
            finally:
                if server is not None:
                    server.stop()
        lines.append(f"{'batch (decide + SQL)':<28}{cpu * us:8.1f} µs   "
                     f"(wall {wall * us:.1f} µs, batches of {args.batch})")
    gc_used = "Python's default GC" if args.default_gc else "the validator's GC settings"
    sys.stdout.write(f"validator CPU per registration ({len(messages)} registrations, best "
                     f"of 3, {gc_used}):\n")
    sys.stdout.writelines(f"  {line}\n" for line in lines)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
