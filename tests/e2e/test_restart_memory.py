"""The validator remembers what the ledger holds across a restart of the embedded stack:
`iuran up`, a worker enrolled by DISNAKER and booked, Ctrl-C (the in-memory broker forgets
every event; PostgreSQL keeps its data folder), `iuran up` again on the same data: the same
NIK registered by DISHUB is refused as a duplicate and nothing is booked twice, and a
deregistration by DISNAKER stops the months."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import subprocess
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from schemas.events import TOPIC_REGISTRATIONS, TOPIC_REJECTED, WorkerDeregistered
from services.domain import errors as E
from services.runtime.embedded import free_port
from services.runtime.settings import Settings
from tests.e2e.test_up import IURAN, _environment, _read_until
from tests.support.infra import fresh_database
from tests.support.kafka import collect, publish
from tests.support.workers import as_message, deregistration, registration, unique_nik

pytestmark = pytest.mark.e2e


def _up(env: dict[str, str]) -> tuple[subprocess.Popen[str], Settings]:
    up = subprocess.Popen([*IURAN, "up", "--broker-port", str(free_port())], env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    banner = _read_until(up, r"Ctrl-C stops everything", timeout=150)
    bootstrap = re.search(r"IURAN_KAFKA_BOOTSTRAP=(\S+)", banner)
    database_url = re.search(r"IURAN_DATABASE_URL='([^']+)'", banner)
    assert bootstrap and database_url, banner
    return up, Settings(kafka_bootstrap=bootstrap.group(1), database_url=database_url.group(1))


def _stop(up: subprocess.Popen[str]) -> None:
    up.send_signal(signal.SIGINT)
    try:
        up.wait(timeout=60)
    except subprocess.TimeoutExpired:
        up.kill()
        up.wait(timeout=10)


async def _until(check: Callable[[], Awaitable[Any]], within: float) -> Any:
    deadline = time.monotonic() + within
    value = await check()
    while not value and time.monotonic() < deadline:
        await asyncio.sleep(0.3)
        value = await check()
    return value


async def _months(url: str, nik: str) -> list[tuple[str, str, str]]:
    connection = await asyncpg.connect(url)
    try:
        rows = await connection.fetch(
            "SELECT period, opd_code, status FROM finance.contributions WHERE nik = $1 "
            "ORDER BY period, generation", nik)
        return [(r["period"], r["opd_code"], r["status"]) for r in rows]
    finally:
        await connection.close()


async def _decision(url: str, event_id: uuid.UUID) -> asyncpg.Record | None:
    connection = await asyncpg.connect(url)
    try:
        return await connection.fetchrow(
            "SELECT outcome, errors FROM registry.decisions WHERE event_id = $1", event_id)
    finally:
        await connection.close()


def test_after_a_restart_a_second_opd_is_refused_and_a_deregistration_stops_the_months(
    session_dir: Path,
) -> None:
    data_dir = session_dir / "restart-memory"
    data_dir.mkdir()
    external = os.environ.get("IURAN_DATABASE_URL")
    with fresh_database(session_dir) if external else contextlib.nullcontext() as database_url:
        env = _environment(data_dir, database_url)
        nik = unique_nik()

        up, settings = _up(env)
        try:
            enrolled = registration(nik=nik, opd_code="DISNAKER")
            asyncio.run(publish(settings, TOPIC_REGISTRATIONS, [as_message(enrolled)]))

            async def booked() -> bool:
                return len(await _months(settings.database_url or "", nik)) == 12

            assert asyncio.run(_until(booked, within=120)), "DISNAKER's months never booked"
        finally:
            _stop(up)

        up, settings = _up(env)  # a new, empty broker; the same PostgreSQL data
        url = settings.database_url or ""
        try:
            second = registration(nik=nik, opd_code="DISHUB")
            asyncio.run(publish(settings, TOPIC_REGISTRATIONS, [as_message(second)]))
            decided = asyncio.run(_until(lambda: _decision(url, second.event_id), 120))
            assert decided is not None, "DISHUB's registration was never decided"
            assert decided["outcome"] == "rejected"
            assert [e["code"] for e in json.loads(decided["errors"])] == [
                E.DUPLICATE_ENROLLMENT]
            told = asyncio.run(collect(
                settings, TOPIC_REJECTED,
                lambda r: json.loads(r.value).get("event_id") == str(second.event_id),
                want=1))
            assert [e["code"] for e in json.loads(told[0].value)["errors"]] == [
                E.DUPLICATE_ENROLLMENT]
            months = asyncio.run(_months(url, nik))
            assert len(months) == 12 and {(o, s) for _, o, s in months} == {
                ("DISNAKER", "booked")}

            stop: WorkerDeregistered = deregistration(nik, "2026-03", opd_code="DISNAKER")
            asyncio.run(publish(settings, TOPIC_REGISTRATIONS, [as_message(stop)]))

            async def stopped() -> bool:
                rows = await _months(url, nik)
                return sum(s == "cancelled" for _, _, s in rows) == 9

            assert asyncio.run(_until(stopped, within=120)), \
                "the deregistration after the restart did not stop the months"
            months = asyncio.run(_months(url, nik))
            assert [s for _, _, s in months] == ["booked"] * 3 + ["cancelled"] * 9
        finally:
            _stop(up)
