"""The processes as a user runs them: `iuran up` in the foreground, then a crash of every
service in the middle of a batch; `iuran demo` as the README's first command runs it."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import psutil
import pytest

from schemas.events import TOPIC_REGISTRATIONS
from services.runtime.embedded import free_port
from services.runtime.settings import Settings
from services.runtime.stack import http_json
from tests.support import faults
from tests.support.infra import fresh_database
from tests.support.kafka import publish
from tests.support.workers import as_message, registration

pytestmark = pytest.mark.e2e

IURAN = [sys.executable, "-m", "services.cli.main"]


def _environment(data_dir: Path, database_url: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("IURAN_")}
    env.update({
        "IURAN_DATA_DIR": str(data_dir),
        "IURAN_VALIDATOR_PORT": str(free_port()),
        "IURAN_LEDGER_PORT": str(free_port()),
        "IURAN_PROJECTOR_PORT": str(free_port()),
        "IURAN_API_PORT": str(free_port()),
        "IURAN_KAFKA_SESSION_TIMEOUT_SECONDS": "6",
        "IURAN_KAFKA_REBALANCE_TIMEOUT_SECONDS": "6",
    })
    if database_url:
        env["IURAN_DATABASE_URL"] = database_url
    return env


@pytest.fixture
def external_database(session_dir: Path) -> Iterator[str | None]:
    """A fresh database when the suite runs against an external server, else None."""
    if not os.environ.get("IURAN_DATABASE_URL"):
        yield None
        return
    with fresh_database(session_dir) as url:
        yield url


def _read_until(process: subprocess.Popen[str], pattern: str, timeout: float) -> str:
    """Lines of the process's stdout up to one matching pattern."""
    assert process.stdout is not None
    seen = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            if process.poll() is not None:
                break
            continue
        seen.append(line)
        if re.search(pattern, line):
            return "".join(seen)
    raise AssertionError(f"no line matching {pattern!r} in time; got:\n{''.join(seen)}")


def _service_pids(parent: int) -> dict[str, int]:
    found = {}
    for child in psutil.Process(parent).children():
        cmd = child.cmdline()
        if "service" in cmd:
            found[cmd[-1]] = child.pid
    return found


async def _count(url: str, niks: list[str]) -> tuple[int, int, int]:
    connection = await asyncpg.connect(url)
    try:
        row = await connection.fetchrow(
            """SELECT count(*) AS contributions,
                      count(DISTINCT (nik, period)) AS distinct_months,
                      (SELECT count(*) FROM ledger.contributions c
                         JOIN ledger.transfers t ON t.transfer_id = c.posting_id
                        WHERE c.nik = ANY($1::text[]) AND t.kind = 'accrual') AS accruals
                 FROM ledger.contributions WHERE nik = ANY($1::text[])""", niks)
        return row["contributions"], row["distinct_months"], row["accruals"]
    finally:
        await connection.close()


def test_up_survives_a_crash_of_every_service_mid_batch(
    session_dir: Path, external_database: str | None, tmp_path_factory: pytest.TempPathFactory
) -> None:
    data_dir = session_dir / "up"
    data_dir.mkdir()
    env = _environment(data_dir, external_database)
    up = subprocess.Popen([*IURAN, "up", "--broker-port", str(free_port())], env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        banner = _read_until(up, r"Ctrl-C stops everything", timeout=150)
        bootstrap = re.search(r"IURAN_KAFKA_BOOTSTRAP=(\S+)", banner).group(1)  # type: ignore[union-attr]
        database_url = re.search(r"IURAN_DATABASE_URL='([^']+)'", banner).group(1)  # type: ignore[union-attr]
        settings = Settings(kafka_bootstrap=bootstrap, database_url=database_url,
                            **{f"{n}_port": int(env[f"IURAN_{n.upper()}_PORT"])
                               for n in ("validator", "ledger", "projector", "api")})
        events = [registration() for _ in range(3000)]
        niks = [e.worker.nik for e in events]
        expected = len(events) * 12

        async def batch_with_a_crash() -> tuple[int, dict[str, int]]:
            sender = asyncio.create_task(
                publish(settings, TOPIC_REGISTRATIONS, [as_message(e) for e in events]))
            deadline = time.monotonic() + 120
            while (await _count(database_url, niks))[0] == 0:
                assert time.monotonic() < deadline, "the batch never started booking"
                await asyncio.sleep(0.1)
            # A service holds work it has not committed once it took records beyond what
            # its group committed on the partitions it holds; read while it is stopped
            # (SIGSTOP), so that no commit falls between the reading and the kill. Whichever
            # holds work is killed first: the validator feeds the other two, so they hold
            # work only while it is busy.
            pids, held = _service_pids(up.pid), {}
            deadline = time.monotonic() + 30
            async with contextlib.AsyncExitStack() as readers:
                committed_now = {
                    name: await readers.enter_async_context(
                        faults.committed_reader(settings, faults.GROUPS[name], topic))
                    for name, topic in faults.INPUT_TOPIC.items()}
                while len(held) < len(faults.INPUT_TOPIC):
                    assert time.monotonic() < deadline, \
                        f"never held work: {sorted(set(faults.INPUT_TOPIC) - set(held))}"
                    for name, topic in faults.INPUT_TOPIC.items():
                        if name in held:
                            continue
                        taken = await faults.stopped_holding_work(
                            settings, name, topic, pids[name], committed_now[name])
                        if taken is not None:
                            os.kill(pids[name], signal.SIGKILL)
                            held[name] = faults.uncommitted(taken, await committed_now[name]())
                    await asyncio.sleep(0.02)
            in_flight = expected - (await _count(database_url, niks))[0]
            await sender
            return in_flight, held

        in_flight, uncommitted = asyncio.run(batch_with_a_crash())
        faults.record("fault.up-kill", in_flight=in_flight, uncommitted_in_process=uncommitted)
        assert in_flight > 0
        # measured across the kill: handled just before it, committed once they were dead
        assert min(uncommitted.values()) > 0, f"a service held no work at the kill: {uncommitted}"
        deadline = time.monotonic() + 240
        counts = asyncio.run(_count(database_url, niks))
        while counts[0] < expected and time.monotonic() < deadline:
            time.sleep(1)
            counts = asyncio.run(_count(database_url, niks))
        contributions, distinct_months, accruals = counts
        assert contributions == expected, f"lost {expected - contributions} contributions"
        assert distinct_months == expected
        assert accruals == expected, "an accrual was booked twice or not at all"
        assert up.poll() is None, "iuran up died instead of restarting its services"
        assert set(_service_pids(up.pid)) == {"validator", "ledger", "projector", "api"}
    finally:
        up.send_signal(signal.SIGINT)
        try:
            up.wait(timeout=60)
        except subprocess.TimeoutExpired:
            up.kill()
    assert up.returncode == 0
    assert not [p for p in psutil.process_iter(["cmdline"])
                if str(data_dir) in " ".join(p.info["cmdline"] or [])
                and "postgres" not in " ".join(p.info["cmdline"] or [])]


def test_demo_prints_the_summary_and_the_json_figures(
    session_dir: Path, external_database: str | None
) -> None:
    data_dir = session_dir / "demo"
    data_dir.mkdir()
    env = _environment(data_dir, external_database)
    result = subprocess.run([*IURAN, "demo", "--workers", "300", "--json"], env=env,
                            capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    assert figures["registrations_accepted"] == 300
    assert figures["registrations_rejected"] == 0
    assert figures["contributions_booked"] == 3600
    assert figures["amount_booked_idr"] == 3600 * 16_800
    assert figures["seconds"] > 0
    assert "contributions booked                3,600" in result.stdout
    assert figures["coverage"]["active_workers"] == 300
    # Malang is prepaid: one bill of every worker's 12 months, settled through the broker
    (prepaid,) = figures["finance"]["prepaid_bills"]
    assert (prepaid["workers"], prepaid["months_min"], prepaid["months_max"]) == (300, 12, 12)
    assert (prepaid["amount_idr"], prepaid["status"], prepaid["paid_on"]) == (
        3600 * 16_800, "paid", "2025-11-25")
    assert figures["finance"]["budget"][0]["remaining_idr"] == 5_300_000_000 - 3600 * 16_800
    assert "300 workers × 12 months" in result.stdout
    assert (figures["already_booked"], figures["booked_by_this_run"]) == (0, 3600)
    # BPJS in the loop: the workers submitted, each verified with a KPJ, BPJS's bill
    # reconciled line by line (all matched) before the payment
    assert "BPJS submission" in result.stdout and ": 300 new worker(s)" in result.stdout
    assert "BPJS verified 300 worker(s), each with a KPJ" in result.stdout
    assert "BPJS bill of 3,600 lines (" in result.stdout
    assert "reconciled: 3,600 matched\n" in result.stdout
    assert result.stdout.index("reconciled: 3,600 matched") < result.stdout.index(
        "prepaid bill settled")
    submitted = (data_dir / "bpjs-pendaftaran-malang-2025.csv").read_text(encoding="utf-8-sig")
    assert len(submitted.strip().splitlines()) == 301

    # Again on the same data (a new broker, the same PostgreSQL): the same registrations are
    # booked nothing twice, and the run claims no throughput for what it found booked.
    again = subprocess.run([*IURAN, "demo", "--workers", "300", "--json"], env=env,
                           capture_output=True, text=True, timeout=300, check=False)
    assert again.returncode == 0, again.stderr[-3000:]
    second = json.loads(again.stdout.strip().splitlines()[-1])
    assert (second["already_booked"], second["booked_by_this_run"]) == (3600, 0)
    assert second["contributions_booked"] == second["ledger_contributions_total"] == 3600
    assert second["contributions_per_second"] == 0
    assert "3,600 contributions of this batch were already in the ledger" in again.stdout
    assert "contributions/s)" not in again.stdout
    assert len(second["finance"]["prepaid_bills"]) == 1
    assert ": 0 new worker(s)" in again.stdout  # each worker is submitted to BPJS once
    # the renewal into the next year was made by the first run: the second shows it as the
    # ledger holds it, with the same figures
    kept = ("booked_workers", "held_workers", "cost_idr", "waiting_cost_idr", "room_idr",
            "first_month", "first_month_covered_city")
    assert figures["renewal"]["cost_idr"] > 0
    assert {k: second["renewal"][k] for k in kept} == {k: figures["renewal"][k] for k in kept}


def test_the_demo_shows_bpjs_rejections_and_a_flagged_bill_line(
    session_dir: Path, external_database: str | None
) -> None:
    data_dir = session_dir / "demo-bpjs-rejects"
    data_dir.mkdir()
    env = _environment(data_dir, external_database)
    result = subprocess.run([*IURAN, "demo", "--workers", "40", "--bpjs-rejects", "3",
                             "--json"], env=env, capture_output=True, text=True, timeout=300,
                            check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "BPJS verified 37 worker(s)" in result.stdout
    assert "BPJS rejected 3 worker(s) (R02: NIK tidak sesuai dengan data Dukcapil)" in (
        result.stdout)
    assert "1 amount_differs, 443 matched" in result.stdout  # 37 workers x 12 months
    assert "not paid" in result.stdout and "prepaid bill settled" not in result.stdout
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    (prepaid,) = figures["finance"]["prepaid_bills"]
    assert prepaid["workers"] == 37 and prepaid["status"] != "paid"


def test_bad_arguments_get_one_line_and_a_non_zero_exit() -> None:
    result = subprocess.run([*IURAN, "demo", "--workers", "zero"], capture_output=True,
                            text=True, timeout=60, check=False)
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert "'zero' is not a whole number" in result.stderr


def test_coverage_comes_back_from_the_ledger_after_everything_restarts(
    session_dir: Path, external_database: str | None
) -> None:
    """A demo batch, then `iuran up` on the same data: the broker is new and empty, yet the
    projector's totals equal what the ledger holds."""
    data_dir = session_dir / "restart"
    data_dir.mkdir()
    env = _environment(data_dir, external_database)
    first = subprocess.run([*IURAN, "demo", "--workers", "150", "--json"], env=env,
                           capture_output=True, text=True, timeout=300, check=False)
    assert first.returncode == 0, first.stderr[-3000:]
    booked = json.loads(first.stdout.strip().splitlines()[-1])["ledger_contributions_total"]
    assert booked == 150 * 12

    up = subprocess.Popen([*IURAN, "up", "--broker-port", str(free_port())], env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        _read_until(up, r"Ctrl-C stops everything", timeout=150)
        url = f"http://127.0.0.1:{env['IURAN_PROJECTOR_PORT']}/coverage"
        deadline = time.monotonic() + 60
        snapshot: dict[str, object] = {}
        while time.monotonic() < deadline:
            body = http_json(url)
            snapshot = next((s for s in body or [] if s["programme"] == "malang-2025"), {})
            if snapshot.get("contributions_booked") == booked:
                break
            time.sleep(0.5)
        assert snapshot.get("contributions_booked") == booked
        assert snapshot.get("active_workers") == 150
        assert snapshot.get("booked_idr") == booked * 16_800
    finally:
        up.send_signal(signal.SIGINT)
        try:
            up.wait(timeout=60)
        except subprocess.TimeoutExpired:
            up.kill()
