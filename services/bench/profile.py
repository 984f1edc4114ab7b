"""py-spy on every service process while a batch runs: collapsed stacks per process (open
them in speedscope.app or flamegraph.pl) and a top-N text summary derived from them."""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from services.bench.infra import Stack

_FRAME = re.compile(r"^(?P<function>.*) \((?P<file>.*?)(?::(?P<line>\d+))?\)$")


class ProfilerError(RuntimeError):
    """py-spy is missing or could not attach."""


@dataclass
class Recording:
    name: str
    output: Path
    log: Path
    process: subprocess.Popen[bytes]


def py_spy() -> str:
    found = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(found).exists():
        raise ProfilerError("py-spy is not installed: `make install` (it is a dev extra)")
    return found


def start(st: Stack, folder: Path, rate: int = 100) -> list[Recording]:
    """Attach py-spy to every service process; returns once each is sampling."""
    folder.mkdir(parents=True, exist_ok=True)
    binary = py_spy()
    recordings = []
    for name, pids in st.pids().items():
        for index, pid in enumerate(pids):
            label = name if len(pids) == 1 else f"{name}-{index}"
            output, log = folder / f"{label}.collapsed.txt", folder / f"{label}.py-spy.log"
            with log.open("wb") as out:
                process = subprocess.Popen(
                    [binary, "record", "--pid", str(pid), "--format", "raw", "--rate",
                     str(rate), "--nonblocking", "--output", str(output)],
                    stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
            recordings.append(Recording(label, output, log, process))
    deadline = time.monotonic() + 30
    for recording in recordings:
        while "Sampling process" not in recording.log.read_text(errors="replace"):
            if recording.process.poll() is not None or time.monotonic() > deadline:
                raise ProfilerError(f"py-spy did not attach to {recording.name}: "
                                    + recording.log.read_text(errors="replace")[-500:])
            time.sleep(0.1)
    return recordings


def stop(recordings: list[Recording]) -> None:
    """Stop sampling (py-spy writes its file on SIGINT)."""
    for recording in recordings:
        if recording.process.poll() is None:
            recording.process.send_signal(signal.SIGINT)
    for recording in recordings:
        recording.process.wait(timeout=120)
        if not recording.output.exists():
            raise ProfilerError(f"py-spy wrote nothing for {recording.name}: "
                                + recording.log.read_text(errors="replace")[-500:])


def _where(file: str) -> str:
    """A short place for a frame's file: the package path inside site-packages or the repo."""
    for marker in ("site-packages/", "/services/", "/schemas/", "lib/python3."):
        if marker in file:
            tail = file.split(marker, 1)[1]
            if marker == "lib/python3.":
                tail = "stdlib/" + tail.split("/", 1)[-1]
            elif marker != "site-packages/":
                tail = marker.strip("/") + "/" + tail
            return tail
    return file


def _ours(frame: str) -> bool:
    """A frame of iuran's code below the command line's entry point."""
    where = frame.rpartition(" (")[2]
    return where.startswith(("services/", "schemas/")) and not where.startswith("services/cli/")


def _package(where: str) -> str:
    parts = where.split("/")
    if parts[0] in ("services", "stdlib") and len(parts) > 1:
        return "/".join(parts[:2]).removesuffix(".py")
    return parts[0].removesuffix(".py")


def summarize(collapsed: Path, top: int = 25) -> str:
    """Self and inclusive sample shares of the hottest functions, and the share per package."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    packages: Counter[str] = Counter()
    total = 0
    for line in collapsed.read_text(encoding="utf-8", errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        frames = []
        for frame in stack.split(";"):
            match = _FRAME.match(frame)
            frames.append(f"{match['function']} ({_where(match['file'])})" if match else frame)
        own[frames[-1]] += count
        packages[_package(frames[-1].rpartition(" (")[2].rstrip(")"))] += count
        for frame in set(frames):
            if _ours(frame):
                inclusive[frame] += count
    if not total:
        return f"{collapsed.name}: no samples (the process was idle)\n"

    def block(title: str, counter: Counter[str]) -> list[str]:
        return [title] + [f"  {count / total:6.1%}  {what}"
                          for what, count in counter.most_common(top)]

    lines = [f"{collapsed.stem.removesuffix('.collapsed')}: {total:,} samples of the process "
             "on CPU (py-spy, idle threads excluded)"]
    lines += block(f"top {top} by own time (the frame on top of the stack):", own)
    lines += block(f"top {top} of iuran's functions by inclusive time (anywhere on the stack):",
                   inclusive)
    lines += block("own time by package:", packages)
    return "\n".join(lines) + "\n"
