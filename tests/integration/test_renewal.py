"""`iuran renew` through the real broker, validator and ledger processes into PostgreSQL:
the cover goes on from the month after the last covered month, a worker is renewed once
however often the renewal runs, a worker the next programme already has or a deregistered one
is left out, and a renewal after the cover lapsed is accepted with a cover_gap warning that
shows in the worker's history."""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid
from pathlib import Path

import asyncpg
import httpx
import pytest

from schemas.events import TOPIC_REGISTRATIONS, Category, WorkerRegistered
from services.cli.renew import renew
from services.domain.programme import load_programmes
from services.domain.renewal import renewal_event_id
from services.ledger.budget import ensure_allocation, raise_allocation
from services.runtime.embedded import free_port
from services.runtime.settings import Settings
from services.runtime.stack import ServiceProcesses
from tests.support.gateway import DINSOS, DISHUB, base_url, outcomes
from tests.support.kafka import publish
from tests.support.workers import as_message, deregistration, registration

pytestmark = pytest.mark.integration

JSON = {"Content-Type": "application/json"}


async def wait_months(db: asyncpg.Pool, programme: str, want: dict[str, int],
                      timeout: float = 120.0) -> dict[str, list[str]]:
    """The live months of each NIK in the programme, once each has ``want[nik]`` of them."""
    deadline = time.monotonic() + timeout
    found: dict[str, list[str]] = {}
    while time.monotonic() < deadline:
        rows = await db.fetch(
            """SELECT nik, array_agg(period ORDER BY period) AS periods
                 FROM ledger.live_contributions
                WHERE programme = $1 AND nik = ANY($2::text[]) GROUP BY nik""",
            programme, list(want))
        found = {r["nik"]: list(r["periods"]) for r in rows}
        if all(len(found.get(n, [])) == count for n, count in want.items()):
            return found
        await asyncio.sleep(0.3)
    return found


async def test_a_renewal_continues_the_cover_once_and_shows_a_lapse(
    stack: ServiceProcesses, settings: Settings, db: asyncpg.Pool
) -> None:
    programmes = load_programmes(settings.programmes_dir)
    source, target = programmes["malang-2025"], programmes["malang-2026"]
    december = registration(coverage_start="2025-12")       # covered to 2026-11
    september = registration(coverage_start="2025-09")      # covered to 2026-08
    lapsed = registration(coverage_start="2025-09", months=3)  # covered to 2025-11
    taken = registration(coverage_start="2025-09")
    stopped = registration(coverage_start="2025-12")
    ours: list[WorkerRegistered] = [december, september, lapsed, taken, stopped]
    await publish(settings, TOPIC_REGISTRATIONS, [as_message(e) for e in ours])
    niks = {e.worker.nik: e for e in ours}
    assert len(await wait_months(db, source.id, {n: e.months for n, e in niks.items()})) == 5
    # an OPD enrolled one of them in 2026 already; another was deregistered
    by_opd = registration(nik=taken.worker.nik, programme=target.id, opd_code="DISHUB",
                          coverage_start="2026-09")
    await publish(settings, TOPIC_REGISTRATIONS, [
        as_message(by_opd), as_message(deregistration(stopped.worker.nik, "2026-06"))])
    await wait_months(db, target.id, {taken.worker.nik: 12})
    await wait_months(db, source.id, {stopped.worker.nik: 6})
    known = {n: e.worker for n, e in niks.items()}

    async with db.acquire() as conn:
        planned = await renew(conn, settings, source, target, by="test", dry_run=True,
                              now=settings.now(), known=known, niks=list(niks))
    assert (planned.workers, planned.renewed, planned.waiting) == (4, 3, 0)
    assert planned.skipped == {"already_enrolled": 1}
    assert planned.cost_idr == 3 * 12 * 16_800 and planned.published == 0
    assert planned.cover_gaps == 1
    assert planned.cover_ends == {"2025-12": 1, "2026-09": 2, "2026-12": 1}
    assert planned.first_month == "2026-09" and planned.first_month_workers == 2

    async with db.acquire() as conn:
        done = await renew(conn, settings, source, target, by="test", dry_run=False,
                           now=settings.now(), known=known, niks=list(niks), timeout=120)
    assert done.published == 3 and done.settled_in_time
    renewed = await wait_months(db, target.id, {december.worker.nik: 12,
                                                september.worker.nik: 12,
                                                lapsed.worker.nik: 12})
    # no gap: each continues the month after its last covered month
    assert renewed[december.worker.nik][0] == "2026-12"
    assert renewed[december.worker.nik][-1] == "2027-11"
    assert renewed[september.worker.nik][0] == "2026-09"
    assert renewed[lapsed.worker.nik][0] == "2026-09"  # the programme's first month
    expiry = {r["nik"]: r for r in await db.fetch(
        "SELECT nik, renewed_to, renewed_from FROM finance.cover_expiry "
        "WHERE programme = $1 AND nik = ANY($2::text[])", source.id, list(niks))}
    assert (expiry[december.worker.nik]["renewed_to"],
            expiry[december.worker.nik]["renewed_from"]) == (target.id, "2026-12")
    assert expiry[stopped.worker.nik]["renewed_to"] is None

    # the lapse is a warning the OPD sees with the registration and in the worker's history
    warnings = await db.fetchval(
        "SELECT warnings FROM registry.decisions WHERE event_id = $1",
        renewal_event_id(lapsed.worker.nik, target.id))
    assert [w["code"] for w in json.loads(warnings)] == ["cover_gap"]
    history = await db.fetch(
        "SELECT event, period, detail FROM finance.worker_history "
        "WHERE nik = $1 AND event = 'cover_gap'", lapsed.worker.nik)
    assert [(h["event"], h["period"]) for h in history] == [("cover_gap", "2026-09")]
    assert "2025-11" in history[0]["detail"]
    assert await db.fetchval(
        "SELECT count(*) FROM registry.decisions WHERE event_id = $1",
        renewal_event_id(december.worker.nik, target.id)) == 1
    ranks = await db.fetch(
        "SELECT nik, rank FROM ledger.renewal_ranks WHERE programme = $1 "
        "AND nik = ANY($2::text[]) ORDER BY rank", target.id, list(niks))
    assert {r["nik"] for r in ranks} == {december.worker.nik, september.worker.nik,
                                         lapsed.worker.nik}

    # a second run renews nobody twice
    async with db.acquire() as conn:
        again = await renew(conn, settings, source, target, by="test", dry_run=False,
                            now=settings.now(), known=known, niks=list(niks))
    assert (again.renewed, again.published) == (0, 0)
    assert again.skipped == {"already_enrolled": 4}
    await asyncio.sleep(1.0)
    counts = await db.fetch(
        "SELECT nik, count(*) AS n FROM finance.contributions WHERE programme = $1 "
        "AND nik = ANY($2::text[]) AND status <> 'cancelled' GROUP BY nik",
        target.id, list(niks))
    assert sorted(r["n"] for r in counts) == [12, 12, 12, 12]


async def test_an_opd_sees_its_workers_cover_end_and_a_renewal_takes_their_gateway_details(
    stack: ServiceProcesses, settings: Settings, db: asyncpg.Pool
) -> None:
    mine = registration(opd_code="DISHUB", coverage_start="2025-12")
    async with httpx.AsyncClient(base_url=base_url(settings), timeout=60) as client:
        sent = await client.post("/v1/registrations", headers={**DISHUB, **JSON},
                                 json=[mine.model_dump(mode="json")])
        assert sent.status_code == 201, sent.text
        await outcomes(client, sent.json()["submission_id"], DISHUB)
        nik = mine.worker.nik
        own = await client.get("/v1/cover-expiry", headers=DISHUB,
                               params={"programme": "malang-2025", "limit": 1000})
        theirs = await client.get("/v1/cover-expiry", headers=DINSOS,
                                  params={"limit": 1000})
    assert own.status_code == 200, own.text
    row = next(i for i in own.json()["items"] if i["nik"] == nik)
    assert (row["covered_through"], row["renewed_to"]) == ("2026-11", None)
    assert nik not in {i["nik"] for i in theirs.json()["items"]}

    programmes = load_programmes(settings.programmes_dir)
    async with db.acquire() as conn:  # no worker record given: the gateway's is used
        planned = await renew(conn, settings, programmes["malang-2025"],
                              programmes["malang-2026"], by="test", dry_run=True,
                              now=settings.now(), niks=[nik])
    assert (planned.renewed, planned.skipped) == (1, {})


def _programmes_with_a_small_next_year(folder: Path, target: str, budget_idr: int) -> Path:
    """The deployed programmes and calendar, and a next year like malang-2026 whose budget
    takes ``budget_idr`` and whose priority puts Linmas first."""
    deployed = Settings().programmes_dir
    for source, into in ((deployed, folder), (deployed.parent / "calendar",
                                              folder.parent / "calendar")):
        into.mkdir()
        for path in source.glob("*.toml"):
            (into / path.name).write_text(path.read_text(encoding="utf-8"), encoding="utf-8")
    text = (deployed / "malang-2026.toml").read_text(encoding="utf-8")
    for pattern, new in ((r'(?m)^id = .*$', f'id = "{target}"'),
                         (r"(?m)^budget_idr = .*$", f"budget_idr = {budget_idr}"),
                         (r"(?m)^categories = \[\"linmas\".*$", 'categories = ["linmas"]')):
        text, count = re.subn(pattern, new, text, count=1)
        assert count == 1, pattern
    (folder / f"{target}.toml").write_text(text, encoding="utf-8")
    return folder


async def test_when_the_budget_is_short_the_priority_order_decides_who_is_booked_and_who_waits(
    stack: ServiceProcesses, settings: Settings, db: asyncpg.Pool, tmp_path: Path
) -> None:
    year = 12 * 16_800
    target_id = f"renew-{uuid.uuid4().hex[:8]}"
    folder = _programmes_with_a_small_next_year(tmp_path / "programmes", target_id, 2 * year)
    programmes = load_programmes(folder)
    source, target = programmes["malang-2025"], programmes[target_id]
    async with db.acquire() as conn:
        await ensure_allocation(conn, target)

    def enrolled(category: Category) -> WorkerRegistered:
        event = registration(coverage_start="2025-12")
        worker = event.worker.model_copy(update={"category": category})
        return event.model_copy(update={"worker": worker})

    ojek = [enrolled(Category.OJEK_ONLINE) for _ in range(3)]
    linmas = enrolled(Category.LINMAS)
    ours = [*ojek, linmas]
    await publish(settings, TOPIC_REGISTRATIONS, [as_message(e) for e in ours])
    niks = [e.worker.nik for e in ours]
    await wait_months(db, source.id, dict.fromkeys(niks, 12))

    ours_settings = settings.model_copy(update={"programmes_dir": folder,
                                                "validator_port": free_port()})
    validator = ServiceProcesses(ours_settings, ["validator"], tmp_path / "logs")
    stack.stop("validator")  # this test's validator knows the small programme
    try:
        validator.start()
        validator.wait_ready(timeout=120)
        async with db.acquire() as conn:
            done = await renew(conn, ours_settings, source, target, by="test", dry_run=False,
                               now=settings.now(), known={e.worker.nik: e.worker for e in ours},
                               niks=niks, timeout=120)
        order = [linmas.worker.nik, *sorted(e.worker.nik for e in ojek)]
        assert (done.renewed, done.waiting, done.published) == (2, 2, 4)
        booked = await wait_months(db, target.id, {n: 12 for n in order[:2]})
        assert sorted(booked) == sorted(order[:2])  # Linmas first, then by NIK
        deadline = time.monotonic() + 120
        waiting: list[asyncpg.Record] = []
        while time.monotonic() < deadline:
            waiting = await db.fetch(
                "SELECT place, nik, months, reason, renewal_of FROM finance.waiting_list "
                "WHERE programme = $1 ORDER BY place", target.id)
            if len(waiting) == 2 and all(w["months"] == 12 for w in waiting):
                break
            await asyncio.sleep(0.3)
        assert [(w["place"], w["nik"], w["reason"], w["renewal_of"]) for w in waiting] == [
            (1, order[2], "budget_exceeded", source.id),
            (2, order[3], "budget_exceeded", source.id)]

        async with db.acquire() as conn:  # the budget is raised by one worker-year
            await raise_allocation(conn, programme=target.id, amount_idr=year,
                                   reason="APBD-P", changed_by="test")
        assert sorted(await wait_months(db, target.id, {n: 12 for n in order[:3]})) == sorted(
            order[:3])
        assert [w["nik"] for w in await db.fetch(
            "SELECT nik FROM finance.waiting_list WHERE programme = $1", target.id)] == [
            order[3]]
    finally:
        validator.stop()
        stack.start("validator")
        stack.wait_ready(timeout=120)
