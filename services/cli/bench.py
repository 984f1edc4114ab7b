"""``iuran bench``: throughput against the raw floor, latency, memory and scale-out."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from services.runtime.settings import Settings


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser("bench", help="measure throughput, latency and memory (make bench)")
    parser.add_argument("--malang", type=_count, default=25_808,
                        help="registrations in the Malang batch (default %(default)s)")
    parser.add_argument("--large", type=_count, default=250_000,
                        help="registrations in the large batch (default %(default)s; 0 skips)")
    parser.add_argument("--rate", type=_count, default=1000,
                        help="registrations per second for the latency run (default %(default)s)")
    parser.add_argument("--latency-seconds", type=_count, default=20,
                        help="length of the latency run (default %(default)s)")
    parser.add_argument("--out", type=Path, default=Path("bench-results.json"),
                        help="where the figures go (default %(default)s)")
    parser.set_defaults(handler=handle)


def _count(text: str) -> int:
    try:
        value = int(text.replace("_", "").replace(",", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} must not be negative")
    return value


def _say(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def handle(args: argparse.Namespace, settings: Settings) -> int:
    from services.bench import run

    base = settings.model_copy(update={"kafka_bootstrap": None, "database_url": None})
    results: dict[str, Any] = {"machine": run.machine(), "started_at": time.time()}
    _say(f"iuran bench on {results['machine']['cpus']} CPUs; figures go to {args.out}")

    _say(f"1. raw floor and the Malang batch ({args.malang:,} registrations), 4 partitions, "
         "one process per service")
    with run.stack(base, partitions=4, instances=1) as st:
        results["raw_floor"] = run.raw_floor(st, args.malang)
        _say(f"   raw floor: {results['raw_floor']['rows_per_second']:,.0f} rows/s")
        results["malang"] = run.batch(st, args.malang)
        _say(f"   iuran: {results['malang']['contributions_per_second']:,.0f} contributions/s")
    if args.large:
        _say(f"2. large batch ({args.large:,} registrations) with memory sampling")
        with run.stack(base, partitions=4, instances=1) as st:
            results["large"] = run.batch(st, args.large, sample_memory=True)
            _say(f"   iuran: {results['large']['contributions_per_second']:,.0f} contributions/s")
    if args.rate and args.latency_seconds:
        _say(f"3. latency at {args.rate:,} registrations/s for {args.latency_seconds}s")
        with run.stack(base, partitions=4, instances=1) as st:
            results["latency"] = run.latency(st, args.rate, float(args.latency_seconds))
            _say(f"   p99 {results['latency']['p99_ms']:,.0f} ms")
    _say(f"4. scale-out: 8 partitions, two processes of each service, {args.malang:,} "
         "registrations")
    with run.stack(base, partitions=8, instances=2) as st:
        results["scale_out"] = run.batch(st, args.malang)
        _say(f"   iuran: {results['scale_out']['contributions_per_second']:,.0f} contributions/s")

    floor_rate = results["raw_floor"]["rows_per_second"]
    results["ratio_to_floor"] = round(results["malang"]["contributions_per_second"]
                                      / floor_rate, 3)
    args.out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    _say(table(results))
    return 0


def table(results: dict[str, Any]) -> str:
    floor_rate = results["raw_floor"]["rows_per_second"]
    lines = ["", f"{'measurement':<44}{'rows':>12}{'seconds':>10}{'per second':>13}{'÷ floor':>9}"]

    def row(label: str, figures: dict[str, Any], rows_key: str, rate_key: str) -> None:
        rate = figures[rate_key]
        lines.append(f"{label:<44}{figures[rows_key]:>12,}{figures['seconds']:>10.1f}"
                     f"{rate:>13,.0f}{rate / floor_rate:>9.2f}")

    row("raw floor (aiokafka + COPY)", results["raw_floor"], "rows", "rows_per_second")
    row("iuran, Malang batch", results["malang"], "contributions", "contributions_per_second")
    if "large" in results:
        row("iuran, large batch", results["large"], "contributions", "contributions_per_second")
    row("iuran, 8 partitions × 2 processes", results["scale_out"], "contributions",
        "contributions_per_second")
    if "latency" in results:
        lat = results["latency"]
        lines.append(f"latency at {lat['rate_per_second']:,}/s: p50 {lat['p50_ms']:,.0f} ms, "
                     f"p95 {lat['p95_ms']:,.0f} ms, p99 {lat['p99_ms']:,.0f} ms "
                     f"({lat['registrations']:,} registrations)")
    if "large" in results and "peak_rss_mb" in results["large"]:
        lines.append("peak RSS on the large batch: " + ", ".join(
            f"{k.split(':')[0]} {v:,.0f} MB" for k, v in results["large"]["peak_rss_mb"].items()))
    machine = results["machine"]
    lines.append(f"machine: {machine['cpus']} CPUs, {machine['memory_gb']} GB, Python "
                 f"{machine['python']}, " + ", ".join(
                     f"{k} {v}" for k, v in machine["versions"].items()))
    return "\n".join(lines)
