"""The fault suite's figures (seeds, events in flight at each kill, lost, doubled) go to
faults-results.jsonl in the session's folder and are listed at the end of the run."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import faults


@pytest.fixture(scope="session", autouse=True)
def fault_results(session_dir: Path) -> Iterator[Path]:
    faults.results_dir(session_dir)
    yield session_dir / faults.RESULTS_FILE


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    lines = [r for r in faults.summary_lines(k for k in {r["kind"] for r in faults.RESULTS})
             if r.startswith('{"kind": "fault')]
    if lines:
        terminalreporter.section("fault figures (replay one with IURAN_CHAOS_SEED=<seed>)")
        for line in lines:
            terminalreporter.write_line(line)
