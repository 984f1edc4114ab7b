"""The printed report of ``iuran bench`` and the issue's targets, from the results dict."""

from __future__ import annotations

import math
from typing import Any

from services.domain.money import rupiah

PROCESSES = ("postgres", "validator", "ledger", "projector", "broker", "bench")
SERVICES = ("validator", "ledger", "projector", "broker")
BATCHES = (("malang", "Malang batch"), ("large", "large batch"), ("soak", "latency soak"),
           ("scale_out", "8 partitions × 2 processes"))


def percentile(ordered: list[float], share: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    rank = max(math.ceil(share * len(ordered)) - 1, 0)
    return ordered[min(rank, len(ordered) - 1)]


def ratio_line(results: dict[str, Any]) -> str:
    return f"ratio to raw floor: {results['ratio_to_floor']:.2f}"


def exact_line(exact: dict[str, Any]) -> str:
    return (f"exact against the ledger: {'yes' if exact['exact'] else 'NO'} "
            f"({exact['ledger_rows']:,} of {exact['expected_contributions']:,} contributions, "
            f"{rupiah(exact['ledger_booked_idr'])} of {rupiah(exact['expected_idr'])}; "
            f"{exact['missing']} missing, {exact['unexpected']} unexpected, "
            f"{exact['duplicated']} twice, {exact['wrong_amount']} wrong amount, "
            f"{exact['not_booked']} not booked)")


def _rate_rows(results: dict[str, Any]) -> list[str]:
    floor = results["raw_floor"]["rows_per_second"]
    lines = [f"{'measurement':<52}{'contributions':>14}{'seconds':>9}{'per second':>12}"
             f"{'÷ floor':>9}"]

    def row(label: str, count: int, seconds: float, rate: float) -> None:
        lines.append(f"{label:<52}{count:>14,}{seconds:>9.1f}{rate:>12,.0f}{rate / floor:>9.2f}")

    raw = results["raw_floor"]
    row("raw floor (aiokafka + COPY, no logic)", raw["rows"], raw["seconds"], floor)
    for key, label in BATCHES:
        figures = results.get(key)
        if figures is None or key == "soak":
            continue
        if key == "scale_out":
            label += f" (exact: {'yes' if figures['exact']['exact'] else 'NO'})"
        else:
            label += f" ({figures['registrations']:,} registrations)"
        row(f"iuran, {label}", figures["contributions"], figures["seconds"],
            figures["contributions_per_second"])
    return lines


def _cpu_rows(results: dict[str, Any]) -> list[str]:
    lines = ["", "CPU seconds (µs per contribution) by process"
             + " (bench = the publisher / the floor's consumer)",
             f"{'':<28}" + "".join(f"{name:>18}" for name in PROCESSES)]
    raw = results["raw_floor"]
    lines.append(f"{'raw floor':<28}" + "".join(
        f"{raw['cpu_seconds'].get(n, 0):>9.1f} ({raw['cpu_us_per_row'].get(n, 0):>6.1f})"
        for n in PROCESSES))
    for key, label in BATCHES:
        figures = results.get(key)
        if figures is None:
            continue
        lines.append(f"{label:<28}" + "".join(
            f"{figures['cpu_seconds'].get(n, 0):>9.1f} "
            f"({figures['cpu_us_per_contribution'].get(n, 0):>6.1f})" for n in PROCESSES))
    return lines


def peak_by_service(peaks: dict[str, float]) -> dict[str, float]:
    """The largest peak RSS among the instances of each service."""
    found: dict[str, float] = {}
    for key, mb in peaks.items():
        name = key.split(":")[0]
        found[name] = max(found.get(name, 0.0), mb)
    return found


def _memory_rows(results: dict[str, Any]) -> list[str]:
    lines = ["", "peak RSS, MB (sampled every 0.5 s; the largest instance)",
             f"{'':<56}" + "".join(f"{name:>11}" for name in SERVICES)]
    for key, label in BATCHES:
        figures = results.get(key)
        if figures is None:
            continue
        peaks = peak_by_service(figures["peak_rss_mb"])
        count = figures.get("contributions") or (figures["registrations_published"]
                                                 * results["months"])
        lines.append(f"{label + f' ({count:,} contributions)':<56}"
                     + "".join(f"{peaks.get(n, 0):>11,.0f}" for n in SERVICES))
    if "memory_growth" in results:
        growth = results["memory_growth"]
        lines.append(f"{'large ÷ Malang (1.00 = flat)':<56}"
                     + "".join(f"{growth.get(n, 0):>11.2f}" for n in SERVICES))
    return lines


def memory_growth(results: dict[str, Any]) -> dict[str, float]:
    """Each service's peak RSS on the large batch over its peak on the Malang batch."""
    small = peak_by_service(results["malang"]["peak_rss_mb"])
    large = peak_by_service(results["large"]["peak_rss_mb"])
    return {name: round(large[name] / small[name], 2) for name in sorted(large)
            if small.get(name)}


def lag_table(soak: dict[str, Any], rows: int = 16) -> list[str]:
    samples = soak["lag_samples"]
    groups = sorted({group for sample in samples for group in sample["lag"]})
    step = max(1, -(-len(samples) // rows))
    shown = samples[::step]
    if samples and shown[-1] is not samples[-1]:
        shown.append(samples[-1])
    lines = ["messages behind per consumer group (all its topics), sampled:",
             f"{'t (s)':>8}{'published':>11}" + "".join(f"{g[-22:]:>24}" for g in groups)]
    for sample in shown:
        lines.append(f"{sample['t']:>8.0f}{sample['published']:>11,}" + "".join(
            f"{sum(sample['lag'].get(g, {}).values()):>24,}" if g in sample["lag"]
            else f"{'-':>24}" for g in groups))
    return lines


def soak_lines(soak: dict[str, Any]) -> list[str]:
    head = (f"latency soak at {soak['rate_per_second']:,} registrations/s for {soak['seconds']} s "
            f"(achieved {soak['achieved_rate_per_second']:,.1f}/s, the publisher at most "
            f"{soak['publisher_max_behind_ms']:,.0f} ms behind schedule)")
    if "p99_ms" in soak:
        figures = (f"registration → all months booked: p50 {soak['p50_ms']:,.0f} ms, "
                   f"p95 {soak['p95_ms']:,.0f} ms, p99 {soak['p99_ms']:,.0f} ms, "
                   f"max {soak['max_ms']:,.0f} ms")
    else:
        figures = "no registration was fully booked"
    booked = (f"{soak['registrations_fully_booked']:,} of {soak['registrations_published']:,} "
              f"fully booked; drained {soak['drain_seconds']:.1f} s after the last send"
              + ("" if soak["drained"] else
                 f" (NOT drained within {soak['drain_timeout_seconds']:.0f} s)"))
    check = soak.get("visible_check", {})
    seen = (f"watched until visible (ten a second): {check['seen']:,} of {check['watched']:,}"
            f" seen, p50 {check['p50_ms']:,.0f} ms, p95 {check['p95_ms']:,.0f} ms, p99 "
            f"{check['p99_ms']:,.0f} ms, max {check['max_ms']:,.0f} ms; later than booked_at by "
            f"p50 {check.get('later_than_booked_at_p50_ms', 0):,.0f} ms, max "
            f"{check.get('later_than_booked_at_max_ms', 0):,.0f} ms"
            if "p50_ms" in check else "watched from outside: none seen")
    return ["", head, figures, booked, seen, *lag_table(soak)]


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """The performance targets (docs/performance.md) with the value measured in this run."""
    found: list[dict[str, Any]] = []

    def add(name: str, value: float | bool | None, met: bool) -> None:
        found.append({"target": name, "value": value, "met": met})

    add("Malang batch ≥ 0.25 × raw floor", results["ratio_to_floor"],
        results["ratio_to_floor"] >= 0.25)
    if "large" in results:
        add("large batch ≥ 0.2 × raw floor", results["large_ratio_to_floor"],
            results["large_ratio_to_floor"] >= 0.2 and results["large"]["contributions"]
            >= 3_000_000)
        cpu = results["large"]["cpu_us_per_contribution"]
        pg = cpu.get("postgres", 0.0)
        add("PostgreSQL CPU ≤ 20 µs per contribution (large batch)", pg, pg <= 20)
        every = round(sum(cpu.get(n, 0.0) for n in ("postgres", *SERVICES)), 1)
        add("CPU of all processes ≤ 80 µs per contribution (large batch)", every, every <= 80)
        peak = max(peak_by_service(results["large"]["peak_rss_mb"]).get(n, 0.0)
                   for n in ("validator", "ledger", "projector"))
        add("peak RSS of every service ≤ 300 MB (large batch)", peak, peak <= 300)
    if "soak" in results and "p99_ms" in results["soak"]:
        soak = results["soak"]
        # the worse of the two figures: booked_at leaves the commit out, the watch may be
        # one poll interval late
        p99 = max(soak["p99_ms"], soak.get("visible_check", {}).get("p99_ms", 0.0))
        add("p99 ≤ 250 ms at 1,000 registrations/s for ≥ 5 minutes", p99,
            p99 <= 250 and soak["rate_per_second"] >= 1000
            and soak["seconds"] >= 300 and soak["registrations_not_booked"] == 0
            and soak["achieved_rate_per_second"] >= 0.99 * soak["rate_per_second"])
    if "scale_out" in results:
        exact = results["scale_out"]["exact"]["exact"]
        add("exact under scale-out (8 partitions × 2 processes)", exact, exact)
    if "large" not in results:
        for name in ("large batch ≥ 0.2 × raw floor",
                     "PostgreSQL CPU ≤ 20 µs per contribution (large batch)",
                     "CPU of all processes ≤ 80 µs per contribution (large batch)",
                     "peak RSS of every service ≤ 300 MB (large batch)"):
            add(name + ": not measured", None, False)
    if "p99_ms" not in results.get("soak", {}):
        add("p99 ≤ 250 ms at 1,000 registrations/s for ≥ 5 minutes: not measured", None, False)
    return found


def table(results: dict[str, Any]) -> str:
    lines = ["", *_rate_rows(results), *_cpu_rows(results), *_memory_rows(results)]
    if "soak" in results:
        lines += soak_lines(results["soak"])
    lines += ["", "targets:"] + [
        f"  {'met   ' if t['met'] else 'MISSED'} {t['target']}: {t['value']}"
        for t in results["targets"]]
    machine = results["machine"]
    lines.append(f"machine: {machine['cpus']} CPUs, {machine['memory_gb']} GB, Python "
                 f"{machine['python']}, " + ", ".join(
                     f"{k} {v}" for k, v in machine["versions"].items()))
    return "\n".join(lines)
