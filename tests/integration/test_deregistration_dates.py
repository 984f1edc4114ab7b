"""Deregistrations judged by their day in the programme's time zone, on the running stack:
an OPD stops cover from the current month on at the earliest; a coordinating OPD stops
earlier months only with a documented reason (a death, with its date)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import date, datetime

import httpx
import pytest

from schemas.events import TOPIC_REGISTRATIONS, WorkerDeregistered
from services.runtime.settings import Settings
from services.runtime.stack import ServiceProcesses
from tests.support.gateway import DISHUB, DISNAKER, base_url
from tests.support.kafka import publish
from tests.support.workers import WIB, as_message, deregistration, registration

pytestmark = pytest.mark.integration

JUNE_2026 = datetime(2026, 6, 1, 9, 0, tzinfo=WIB)


@pytest.fixture
async def client(stack: ServiceProcesses, settings: Settings
                 ) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=base_url(settings), timeout=60) as http:
        yield http


async def final(client: httpx.AsyncClient, event_id: uuid.UUID,
                headers: dict[str, str]) -> dict[str, object]:
    for _ in range(180):
        found = await client.get(f"/v1/events/{event_id}", headers=headers)
        if found.status_code == 200 and found.json()["final"]:
            body: dict[str, object] = found.json()
            return body
        await asyncio.sleep(0.5)
    raise AssertionError(f"event {event_id} never decided")


def on(event: WorkerDeregistered, moment: datetime, **fields: object) -> WorkerDeregistered:
    return event.model_copy(update={"occurred_at": moment, **fields})


def codes(outcome: dict[str, object]) -> list[str]:
    return [e["code"] for e in outcome["errors"]]  # type: ignore[attr-defined, index]


async def test_an_opd_cannot_stop_months_already_past(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    enrolled = registration(opd_code="DISHUB")  # 2025-12 to 2026-11
    await publish(settings, TOPIC_REGISTRATIONS, [as_message(enrolled)])
    assert (await final(client, enrolled.event_id, DISHUB))["status"] == "booked"
    nik = enrolled.worker.nik
    # on 1 June 2026 (WIB; still 31 May in UTC) DISHUB stops from 2025-12: refused
    past = on(deregistration(nik, "2025-12", opd_code="DISHUB"), JUNE_2026)
    await publish(settings, TOPIC_REGISTRATIONS, [as_message(past)])
    refused = await final(client, past.event_id, DISHUB)
    assert refused["status"] == "rejected" and codes(refused) == ["effective_period_in_past"]
    assert "2026-06" in refused["errors"][0]["message"]  # type: ignore[index]
    # from the current month on: taken
    now = on(deregistration(nik, "2026-06", opd_code="DISHUB"), JUNE_2026)
    await publish(settings, TOPIC_REGISTRATIONS, [as_message(now)])
    stopped = await final(client, now.event_id, DISHUB)
    assert stopped["status"] == "cancelled"
    assert stopped["cancelled_periods"] == ["2026-06", "2026-07", "2026-08", "2026-09",
                                            "2026-10", "2026-11"]


async def test_a_coordinator_back_dates_only_with_a_documented_death(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    enrolled = registration(opd_code="DISHUB")
    await publish(settings, TOPIC_REGISTRATIONS, [as_message(enrolled)])
    assert (await final(client, enrolled.event_id, DISHUB))["status"] == "booked"
    nik = enrolled.worker.nik
    bare = on(deregistration(nik, "2026-03", opd_code="DISNAKER"), JUNE_2026)
    too_early = on(deregistration(nik, "2026-02", opd_code="DISNAKER"), JUNE_2026,
                   reason_code="deceased", reason_date=date(2026, 2, 14))
    died = on(deregistration(nik, "2026-03", opd_code="DISNAKER"), JUNE_2026,
              reason_code="deceased", reason_date=date(2026, 2, 14))
    await publish(settings, TOPIC_REGISTRATIONS, [as_message(e) for e in (bare, too_early, died)])
    assert codes(await final(client, bare.event_id, DISNAKER)) == ["backdating_reason_required"]
    early = await final(client, too_early.event_id, DISNAKER)
    assert codes(early) == ["effective_period_in_past"]
    assert "2026-03" in early["errors"][0]["message"]  # type: ignore[index]
    stopped = await final(client, died.event_id, DISNAKER)
    assert stopped["status"] == "cancelled" and stopped["cancelled_periods"][0] == "2026-03"  # type: ignore[index]
