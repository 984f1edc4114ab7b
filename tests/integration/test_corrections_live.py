"""Rectification through the running validator and broker: the enrolling OPD's correction of
a worker's name, phone and address is recorded with its history and shows in
`iuran privacy subject`; another OPD's correction, and one of a worker never enrolled, are
rejected with their codes and change nothing; no month changes."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from typing import Any

import asyncpg
import pytest

from schemas.events import TOPIC_REGISTRATIONS, TOPIC_REJECTED, RejectedEvent
from services.runtime.settings import Settings
from services.runtime.stack import ServiceProcesses
from tests.support.kafka import collect, publish
from tests.support.workers import as_message, correction, registration, unique_nik

pytestmark = pytest.mark.integration


async def _wait(check, timeout: float = 90.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while True:
        result = await check()
        if result or time.monotonic() > deadline:
            return result
        await asyncio.sleep(0.3)


async def subject(database_url: str, nik: str) -> dict[str, Any]:
    """`iuran privacy subject NIK --json`, run as a command."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "services.cli.main", "privacy", "subject", nik, "--json",
        env={**os.environ, "IURAN_DATABASE_URL": database_url},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await process.communicate()
    assert process.returncode == 0, err.decode()
    document: dict[str, Any] = json.loads(out)
    return document


async def test_the_enrolling_opd_corrects_a_worker_and_the_history_stays(
    stack: ServiceProcesses, db: asyncpg.Pool, settings: Settings, database_url: str,
) -> None:
    enrolled = registration(opd_code="DISKOPINDAG")
    nik = enrolled.worker.nik
    await publish(settings, TOPIC_REGISTRATIONS, [as_message(enrolled)])

    async def months() -> int:
        return int(await db.fetchval(
            "SELECT count(*) FROM finance.contributions WHERE nik = $1", nik))

    assert await _wait(lambda: _at_least(months, 12))
    first = correction(nik, opd_code="DISKOPINDAG", full_name="Budi Santosa",
                       phone="0813-2222-3333")
    foreign = correction(nik, opd_code="DISHUB", full_name="Someone Else")
    second = correction(nik, opd_code="DISKOPINDAG", kecamatan="Lowokwaru",
                        kelurahan="Tlogomas")
    stranger = correction(unique_nik(), opd_code="DISKOPINDAG", phone="0813-4444-5555")
    await publish(settings, TOPIC_REGISTRATIONS,
                  [as_message(e) for e in (first, foreign, second, stranger)])

    async def rejected(event_id: str) -> list[tuple[str, str]]:
        (record,) = await collect(
            settings, TOPIC_REJECTED,
            lambda r: RejectedEvent.model_validate_json(r.value).event_id == event_id, want=1)
        found = RejectedEvent.model_validate_json(record.value)
        return [(e.field, e.code) for e in found.errors]

    assert await rejected(str(foreign.event_id)) == [("opd_code", "correction_not_permitted")]
    assert await rejected(str(stranger.event_id)) == [("nik", "not_enrolled")]

    async def recorded() -> int:
        return int(await db.fetchval(
            "SELECT count(*) FROM registry.corrections WHERE nik = $1", nik))

    assert await _wait(lambda: _at_least(recorded, 2))
    record = await subject(database_url, nik)
    assert [(c["opd_code"], c["corrected"]) for c in record["corrections"]] == [
        ("DISKOPINDAG", {"full_name": "Budi Santosa", "phone": "0813-2222-3333"}),
        ("DISKOPINDAG", {"kecamatan": "Lowokwaru", "kelurahan": "Tlogomas"}),
    ]
    outcomes = {d["event_id"]: (d["event_type"], d["decision"]) for d in record["decisions"]}
    assert outcomes[str(first.event_id)] == ("corrected", "accepted")
    assert outcomes[str(foreign.event_id)] == ("corrected", "rejected")
    assert await months() == 12, "a correction changes no month"
    assert not (await subject(database_url, stranger.nik))["corrections"]

    # sent again (a redelivery), a correction is recorded once
    await publish(settings, TOPIC_REGISTRATIONS, [as_message(first)])
    await asyncio.sleep(2)
    assert await recorded() == 2
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await db.execute("UPDATE registry.corrections SET reason = 'x' WHERE nik = $1", nik)


async def _at_least(count: Any, wanted: int) -> bool:
    return bool(await count() >= wanted)
