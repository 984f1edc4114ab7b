"""The bench's own arithmetic: percentiles, "caught up", the targets and profile summaries."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from services.bench.lag import caught_up
from services.bench.profile import summarize
from services.bench.report import peak_by_service, percentile, ratio_line, targets

TOPICS = ["iuran.registrations.v1", "iuran.contributions.v1"]


def test_percentile_is_nearest_rank() -> None:
    ordered = [float(n) for n in range(1, 101)]
    assert percentile(ordered, 0.5) == 50.0
    assert percentile(ordered, 0.99) == 99.0
    assert percentile([7.0], 0.99) == 7.0


def test_caught_up_needs_every_topic_consumed_and_no_lag() -> None:
    done = {"v": {TOPICS[0]: 0}, "l": {TOPICS[1]: 0}, "p": {TOPICS[1]: 0}}
    assert caught_up(done, TOPICS)
    assert not caught_up({**done, "p": {TOPICS[1]: 3}}, TOPICS)
    assert not caught_up({"l": {TOPICS[1]: 0}}, TOPICS)  # nobody committed on registrations


def _results(ratio: float, p99: float, seconds: int, rss: float) -> dict[str, object]:
    return {
        "ratio_to_floor": ratio,
        "large_ratio_to_floor": 0.21,
        "large": {"contributions": 3_000_000, "cpu_us_per_contribution": {"postgres": 9.5},
                  "peak_rss_mb": {"validator:1": rss, "ledger:2": 120.0, "projector:3": 90.0,
                                  "broker:4": 900.0}},
        "soak": {"p99_ms": p99, "rate_per_second": 1000, "seconds": seconds,
                 "registrations_not_booked": 0, "achieved_rate_per_second": 999.0},
        "scale_out": {"exact": {"exact": True}},
    }


def test_targets_met_and_missed() -> None:
    met = {t["target"]: t["met"] for t in targets(_results(0.3, 200.0, 300, 250.0))}
    assert all(met.values()), met
    missed = {t["target"]: t["met"] for t in targets(_results(0.2, 200.0, 60, 301.0))}
    assert not missed["Malang batch ≥ 0.25 × raw floor"]
    assert not missed["p99 ≤ 250 ms at 1,000 registrations/s for ≥ 5 minutes"]  # too short
    assert not missed["peak RSS of every service ≤ 300 MB (large batch)"]  # broker not counted
    assert missed["exact under scale-out (8 partitions × 2 processes)"]


def test_soak_target_takes_the_worse_p99() -> None:
    results = _results(0.3, 200.0, 300, 250.0)
    results["soak"]["visible_check"] = {"p99_ms": 260.0}  # type: ignore[index]
    soak = [t for t in targets(results) if t["target"].startswith("p99")][0]
    assert soak == {"target": "p99 ≤ 250 ms at 1,000 registrations/s for ≥ 5 minutes",
                    "value": 260.0, "met": False}


def test_ratio_line_and_peaks() -> None:
    assert ratio_line({"ratio_to_floor": 0.0781}) == "ratio to raw floor: 0.08"
    assert peak_by_service({"ledger:1": 10.0, "ledger:2": 30.0}) == {"ledger": 30.0}


def test_profile_summary_shares(tmp_path: Path) -> None:
    collapsed = tmp_path / "ledger.collapsed.txt"
    collapsed.write_text(
        "run (/x/site-packages/faust/worker.py:10);decode (/repo/services/ledger/decode.py:5) 30\n"
        "run (/x/site-packages/faust/worker.py:10);loads (/usr/lib/python3.11/json/__init__.py"
        ":346) 10\n", encoding="utf-8")
    text = summarize(collapsed, top=5)
    assert "40 samples" in text
    assert " 75.0%  decode (services/ledger/decode.py)" in text
    assert "run (faust/worker.py)" not in text.split("inclusive")[1]  # not iuran's code
    assert " 25.0%  stdlib/json" in text


def test_cli_saves_after_each_phase_and_prints_the_table(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from services.bench import run
    from services.cli.main import main

    seen: list[dict[str, object]] = []
    phase = {"raw_floor": {"rows": 10, "seconds": 1.0, "rows_per_second": 10.0,
                           "cpu_seconds": {}, "cpu_us_per_row": {}},
             "malang": {"registrations": 1, "contributions": 12, "seconds": 2.0,
                        "contributions_per_second": 6.0, "cpu_seconds": {},
                        "cpu_us_per_contribution": {}, "peak_rss_mb": {}},
             "ratio_to_floor": 0.6, "months": 12,
             "machine": {"cpus": 2, "memory_gb": 1.0, "python": "3", "versions": {}}}

    def fake_bench(base: object, sizes: object, say: object, save: Any) -> dict[str, Any]:
        save(phase)
        seen.append(json.loads(out.read_text(encoding="utf-8")))
        results = {**phase, "targets": targets(phase)}
        save(results)
        return results

    out = tmp_path / "bench-results.json"
    monkeypatch.setattr(run, "bench", fake_bench)
    monkeypatch.setattr(run, "machine", lambda: phase["machine"])
    assert main(["bench", "--quick", "--out", str(out)]) == 0
    assert seen[0]["mode"] == "quick" and "targets" not in seen[0]
    saved = json.loads(out.read_text(encoding="utf-8"))
    assert saved["ratio_to_floor"] == 0.6
    assert any(t["target"].endswith("not measured") for t in saved["targets"])
    assert "MISSED" in capsys.readouterr().out
