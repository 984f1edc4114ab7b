"""Figures of the security suite (fuzz cases tried, by kind and code) go to
faults-results.jsonl in the session's folder and are listed at the end of the run."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import faults


@pytest.fixture(scope="session", autouse=True)
def security_results(session_dir: Path) -> Iterator[Path]:
    faults.results_dir(session_dir)
    yield session_dir / faults.RESULTS_FILE


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    lines = [line for line in faults.summary_lines({r["kind"] for r in faults.RESULTS})
             if line.startswith(('{"kind": "fuzz', '{"kind": "security'))]
    if lines:
        terminalreporter.section("fuzz and security figures")
        for line in lines:
            terminalreporter.write_line(line)
