"""``iuran bench``: throughput against the raw floor, CPU and memory per process, a latency
soak, scale-out (make bench); ``--profile``: py-spy flame summaries (make profile)."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

from services.bench.sizes import QUICK, Sizes
from services.cli import arguments
from services.runtime.settings import Settings


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    full = Sizes()
    parser = sub.add_parser("bench", help="measure throughput, latency and memory (make bench)")
    parser.add_argument("--quick", action="store_true",
                        help="small sizes (about two minutes) to check the bench itself; "
                             "the figures say nothing about the targets")
    parser.add_argument("--malang", type=arguments.count,
                        help=f"registrations in the Malang batch (default {full.malang:,})")
    parser.add_argument("--large", type=arguments.count,
                        help=f"registrations in the large batch (default {full.large:,}; 0 "
                             "skips it)")
    parser.add_argument("--rate", type=arguments.count,
                        help=f"registrations per second in the soak (default {full.rate:,})")
    parser.add_argument("--soak-seconds", type=arguments.count,
                        help=f"length of the soak (default {full.soak_seconds}; 0 skips it)")
    parser.add_argument("--out", type=Path, default=Path("bench-results.json"),
                        help="where the figures go (default %(default)s)")
    parser.add_argument("--profile", action="store_true",
                        help="only the Malang batch, every service under py-spy")
    parser.add_argument("--profile-dir", type=Path,
                        help="where --profile writes (default <data dir>/profiles)")
    parser.set_defaults(handler=handle)



def _say(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def handle(args: argparse.Namespace, settings: Settings) -> int:
    from services.bench import report, run

    sizes = QUICK if args.quick else Sizes()
    chosen = {"malang": args.malang, "large": args.large, "rate": args.rate,
              "soak_seconds": args.soak_seconds}
    sizes = dataclasses.replace(sizes, **{k: v for k, v in chosen.items() if v is not None})
    base = settings.model_copy(update={"kafka_bootstrap": None, "database_url": None})
    if args.profile:
        folder = args.profile_dir or settings.data_dir / "profiles"
        run.profile_batch(base, sizes.malang, folder, _say)
        return 0
    _say(f"iuran bench{' --quick' if args.quick else ''} on {run.machine()['cpus']} CPUs; "
         f"figures go to {args.out}")
    mode = "quick" if args.quick else "full"

    def save(results: dict[str, Any]) -> None:
        args.out.write_text(json.dumps({"mode": mode, **results}, indent=2) + "\n",
                            encoding="utf-8")

    results = run.bench(base, sizes, _say, save)
    _say(report.table(results))
    return 0
