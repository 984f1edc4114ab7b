"""Every coverage figure equals the ledger: after a batch with held (over budget),
cancelled and duplicate registrations, with two projector processes of which one is
killed (kill -9) mid-batch, the snapshots on iuran.coverage.v1, the projector's
/coverage, the API's /coverage.json, the Prometheus gauges and the page in headless
Chromium all equal SQL over finance.contributions — per programme, OPD, category,
kecamatan and month. The time each took to converge is recorded."""

from __future__ import annotations

import asyncio
import json
import random
import re
import shutil
import socket
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest

from schemas.events import (
    TOPIC_BPJS_VERIFICATIONS,
    TOPIC_COVERAGE,
    TOPIC_REGISTRATIONS,
    BpjsVerification,
    Category,
)
from services.domain.programme import load_programmes
from services.runtime.embedded import EmbeddedBroker
from services.runtime.kafka import ensure_topics
from services.runtime.settings import REPO_ROOT, Settings
from services.runtime.stack import http_json
from tests.e2e.test_coverage_page import CHROMIUM, id_number, render, text_of
from tests.faults.batches import EVERY_GROUP, kill
from tests.support import faults
from tests.support.coverage import TALLY_FIELDS, as_figures, ledger_figures
from tests.support.faults import FaultStack, Progress, publish_paced, record, wait_for
from tests.support.kafka import collect, publish
from tests.support.settle import handled
from tests.support.workers import as_message, deregistration, registration

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

PREMIUM = 16_800
CITY, PROVINCE = "malang-2025", "jatim-malang-2026"
BUDGET_WORKERS = 40  # the city's budget covers 40 workers for 12 months in this module
PLACES = {"Klojen": "Kauman", "Sukun": "Bandulan", "Blimbing": "Arjosari",
          "Lowokwaru": "Dinoyo", "Kedungkandang": "Buring"}
CITY_OPDS = ["DISNAKER", "DISHUB", "DINSOS", "KEC_SUKUN"]


@pytest.fixture(scope="module")
def coverage_stack() -> Iterator[FaultStack]:
    folder = faults.private_dir("iuran-programmes-")
    programmes = folder / "programmes"  # with the official calendar beside it
    programmes.mkdir()
    shutil.copytree(REPO_ROOT / "deploy" / "calendar", folder / "calendar")
    for path in (REPO_ROOT / "deploy" / "programmes").glob("*.toml"):
        text = path.read_text(encoding="utf-8")
        if path.stem == CITY:
            text = re.sub(r"(?m)^budget_idr = .*$",
                          f"budget_idr = {BUDGET_WORKERS * 12 * PREMIUM}", text)
        (programmes / path.name).write_text(text, encoding="utf-8")
    try:
        with faults.fault_stack("coverage", programmes_dir=programmes) as stack:
            yield stack
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def varied(rng: random.Random, **kwargs: Any) -> Any:
    """A registration with a random OPD, category and kecamatan of the city."""
    event = registration(opd_code=rng.choice(CITY_OPDS), **kwargs)
    kecamatan = rng.choice(sorted(PLACES))
    worker = event.worker.model_copy(update={
        "category": rng.choice(list(Category)), "kecamatan": kecamatan,
        "kelurahan": PLACES[kecamatan]})
    return event.model_copy(update={"worker": worker})


async def settled_ledger(stack: FaultStack) -> None:
    lags = await faults.wait_caught_up(stack.settings, EVERY_GROUP[:2], within=120)
    assert not any(lags.values()), f"the validator or the ledger never caught up: {lags}"
    await handled(stack.settings, [(faults.GROUPS["ledger"], TOPIC_BPJS_VERIFICATIONS)])


def verdicts(programme: str, verified: list[str], rejected: list[str]) -> list[tuple[bytes, bytes]]:
    """BPJS's verdicts on workers of ``programme`` (decided now, after their registration)."""
    at = datetime.now(UTC)
    return [(nik.encode(), BpjsVerification(
        verification_id=uuid.uuid4(), programme=programme, nik=nik, status=status,
        kpj=f"26{nik[-9:]}" if status == "verified" else None,
        effective_period="2025-12" if status == "verified" else None,
        reason_code="R02" if status == "rejected" else None,
        reason="NIK tidak sesuai data Dukcapil" if status == "rejected" else None,
        verified_at=at).model_dump_json().encode())
        for status, niks in (("verified", verified), ("rejected", rejected)) for nik in niks]


async def niks_with(url: str, status: str, niks: list[str]) -> list[str]:
    connection = await asyncpg.connect(url)
    try:
        rows = await connection.fetch(
            "SELECT DISTINCT nik FROM finance.contributions WHERE programme = $1 "
            "AND status = $2 AND nik = ANY($3::text[]) ORDER BY nik", CITY, status, niks)
        return [r["nik"] for r in rows]
    finally:
        await connection.close()


async def expected_figures(url: str) -> dict[str, dict[str, Any]]:
    programmes = load_programmes(REPO_ROOT / "deploy" / "programmes")
    connection = await asyncpg.connect(url)
    try:
        return {pid: await ledger_figures(connection, pid, p.coverage.headline_period)
                for pid, p in programmes.items()}
    finally:
        await connection.close()


def by_programme(body: object) -> dict[str, dict[str, Any]]:
    if not isinstance(body, list):
        return {}
    return {s["programme"]: as_figures(s) for s in body}


def gauges(settings: Settings) -> dict[str, dict[str, float]]:
    """The coverage gauges the process exports, per programme ({} while it does not
    answer)."""
    try:
        text = faults.metrics_text(settings, "projector")
    except OSError:
        return {}
    found: dict[str, dict[str, float]] = {}
    for name in ("iuran_active_workers", "iuran_awaiting_budget_workers",
                 "iuran_awaiting_budget_idr", "iuran_coverage_members",
                 "iuran_coverage_ratio"):
        for programme, value in re.findall(
                rf'^{name}{{programme="([^"]+)"}} (\S+)$', text, re.M):
            found.setdefault(programme, {})[name] = float(value)
    return found


def gauges_expected(snapshot: dict[str, Any]) -> dict[str, float]:
    return {"iuran_active_workers": snapshot["active_workers"],
            "iuran_awaiting_budget_workers": snapshot["awaiting_budget_workers"],
            "iuran_awaiting_budget_idr": snapshot["awaiting_budget_idr"],
            "iuran_coverage_members": snapshot["members"],
            "iuran_coverage_ratio": snapshot["coverage_ratio"]}


async def latest_snapshots(settings: Settings) -> dict[str, dict[str, Any]]:
    """The newest snapshot of each programme on iuran.coverage.v1."""
    records = await collect(settings, TOPIC_COVERAGE, lambda r: True, want=10**9, timeout=3)
    newest: dict[str, Any] = {}
    for r in sorted(records, key=lambda r: (r.partition, r.offset)):
        value = json.loads(r.value)
        newest[value["programme"]] = value
    return newest


def page_figures(dom: str, programme: str) -> dict[str, Any]:
    """What the page shows of one programme, as numbers."""
    def group(name: str) -> dict[str, int]:
        block = re.search(rf'id="{programme}-{name}"(.*?)</ul>', dom, re.S)
        assert block, f"{programme}-{name} not on the page"
        return {k: int(v) for k, v in re.findall(r'data-key="([^"]+)" data-value="(\d+)"',
                                                 block.group(1))}
    chart = re.search(rf'id="{programme}-coverage-chart"(.*?)</svg>', dom, re.S)
    assert chart
    return {
        "active_workers": id_number(text_of(dom, f"{programme}-active-workers")),
        "awaiting_budget_workers": id_number(text_of(dom, f"{programme}-awaiting-budget-workers")),
        "awaiting_budget_idr": id_number(text_of(dom, f"{programme}-awaiting-budget-idr")),
        "members": id_number(text_of(dom, f"{programme}-members")),
        "coverage_ratio": text_of(dom, f"{programme}-coverage-ratio"),
        "by_opd": group("by-opd"), "by_category": group("by-category"),
        "by_kecamatan": group("by-kecamatan"),
        "months": {p: int(w) for p, w in re.findall(
            r'data-period="([^"]+)" data-workers="(\d+)"', chart.group(1)) if int(w)},
    }


def page_expected(figures: dict[str, Any], snapshot: dict[str, Any]) -> dict[str, Any]:
    def active(dimension: str) -> dict[str, int]:
        return {k: v["active_workers"] for k, v in figures[dimension].items()
                if v["active_workers"]}
    return {
        "active_workers": figures["active_workers"],
        "awaiting_budget_workers": figures["awaiting_budget_workers"],
        "awaiting_budget_idr": figures["awaiting_budget_idr"],
        "members": snapshot["registered_outside_programme"]
        + figures["covered_in_headline_period"],
        "coverage_ratio": f"{snapshot['coverage_ratio'] * 100:.2f}%".replace(".", ","),
        "by_opd": active("by_opd"), "by_category": active("by_category"),
        "by_kecamatan": active("by_kecamatan"),
        "months": {p: w for p, (w, _) in figures["months"].items()},
    }


def summary(figures: dict[str, Any]) -> dict[str, Any]:
    """The figures of a programme in short: totals, and active workers per group."""
    return {**{f: figures[f] for f in TALLY_FIELDS},
            "covered_in_headline_period": figures["covered_in_headline_period"],
            **{d: {k: v["active_workers"] for k, v in figures[d].items()}
               for d in ("by_opd", "by_category", "by_kecamatan")}}


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (make tools)")
async def test_every_coverage_figure_equals_the_ledger_with_two_projectors_one_killed(
    coverage_stack: FaultStack,
) -> None:
    stack, settings = coverage_stack, coverage_stack.settings
    rng = random.Random(faults.chaos_seeds(1)[0])
    second = stack.second_instances("second", ["projector", "api"])
    second.start()
    try:
        second.wait_ready(timeout=120)

        async def two_projectors() -> bool:
            return await faults.group_members(settings, faults.GROUPS["projector"]) >= 2

        assert await wait_for(two_projectors, within=60), "the second projector never joined"

        # 50 city workers for the year, 10 for six months whom the province pays for the
        # other six: 660 months against a budget of 480, so some are held
        full = [varied(rng) for _ in range(50)]
        half = [varied(rng, months=6) for _ in range(10)]
        province = [registration(nik=e.worker.nik, programme=PROVINCE, opd_code="DINSOS_JATIM",
                                 coverage_start="2026-06", months=6) for e in half]
        # refused: a second enrolment of the same worker by another OPD, and the province
        # paying months the city pays; and events published twice
        refused = [registration(nik=e.worker.nik, opd_code="DISPANGTAN") for e in full[:5]]
        refused += [registration(nik=e.worker.nik, programme=PROVINCE,
                                 opd_code="DISNAKERTRANS_JATIM", coverage_start="2026-01")
                    for e in full[5:10]]
        events = [*full, *half, *province, *refused]
        messages = [as_message(e) for e in events] + [as_message(e) for e in full[10:15]]
        niks = [e.worker.nik for e in full + half]

        victim, survivor = rng.choice([(stack.services, second), (second, stack.services)])
        chunks, pause = 8, 0.3
        progress = Progress()
        sender = asyncio.create_task(publish_paced(settings, TOPIC_REGISTRATIONS, messages,
                                                   chunks=chunks, pause=pause,
                                                   progress=progress))
        await asyncio.sleep(rng.uniform(0.3, 0.7) * chunks * pause)
        pid = kill(victim, "projector", restart=False)
        killed_at = time.monotonic()
        record("fault.coverage-kill", service="projector", pid=pid,
               instance="first" if victim is stack.services else "second",
               published=progress.published, of=len(messages))
        # BPJS verifies some of the city's workers and rejects a few, while the batch flows
        # and one projector is dead: coverage splits verified from awaiting BPJS
        await publish(settings, TOPIC_BPJS_VERIFICATIONS,
                      verdicts(CITY, [e.worker.nik for e in full[15:35]],
                               [e.worker.nik for e in full[35:38]]))
        await sender
        await settled_ledger(stack)

        # deregistrations: booked workers from 2026-06, held ones altogether
        booked = await niks_with(stack.database_url, "booked", niks)
        held = await niks_with(stack.database_url, "held", niks)
        assert held, "nothing was held: the budget of the test is too large"
        by_nik = {e.worker.nik: e.opd_code for e in full + half}
        stops = [deregistration(n, "2026-06", opd_code=by_nik[n]) for n in booked[:5]]
        stops += [deregistration(n, "2025-12", opd_code=by_nik[n]) for n in held[-3:]]
        await publish_paced(settings, TOPIC_REGISTRATIONS, [as_message(s) for s in stops],
                            chunks=1, pause=0, progress=Progress())
        await settled_ledger(stack)
        settled_at = time.monotonic()
        expected = await expected_figures(stack.database_url)
        assert expected[CITY]["awaiting_budget_workers"] > 0
        assert 0 < expected[CITY]["verified_workers"] < expected[CITY]["active_workers"]
        assert any(v["active_workers"] for v in expected[PROVINCE]["by_opd"].values())

        seen: dict[str, Any] = {}

        async def projector_equal() -> bool:
            seen["projector"] = by_programme(await asyncio.to_thread(
                http_json, f"http://{survivor.settings.http_host}:"
                           f"{survivor.settings.projector_port}/coverage"))
            return seen["projector"] == expected

        assert await wait_for(projector_equal, within=30, interval=0.2), seen.get("projector")
        projector_at = time.monotonic()
        snapshots = {s["programme"]: s for s in http_json(
            f"http://{survivor.settings.http_host}:{survivor.settings.projector_port}/coverage")
            or []}

        async def gauges_equal() -> bool:
            seen["gauges"] = await asyncio.to_thread(gauges, survivor.settings)
            return seen["gauges"] == {p: gauges_expected(s) for p, s in snapshots.items()}

        assert await wait_for(gauges_equal, within=60, interval=0.5), seen.get("gauges")
        gauges_at = time.monotonic()
        # the killed process exports nothing any more; the survivor alone carries the gauges

        async def topic_equal() -> bool:
            latest = await latest_snapshots(settings)
            seen["topic"] = {p: as_figures(s) for p, s in latest.items()}
            return seen["topic"] == expected

        assert await wait_for(topic_equal, within=60, interval=1.0), seen.get("topic")
        topic_at = time.monotonic()

        api = f"http://{second.settings.http_host}:{second.settings.api_port}"
        json_figures = by_programme(await asyncio.to_thread(http_json, f"{api}/coverage.json"))
        assert json_figures == expected

        dom = await asyncio.to_thread(render, f"{api}/coverage")
        assert 'data-loaded="true"' in dom
        for programme in (CITY, PROVINCE):
            assert page_figures(dom, programme) == page_expected(expected[programme],
                                                                 snapshots[programme])

        record("fault.coverage", killed="first" if victim is stack.services else "second",
               projector_converged_s=round(projector_at - settled_at, 2),
               gauges_converged_after_kill_s=round(gauges_at - killed_at, 2),
               topic_converged_s=round(topic_at - settled_at, 2),
               **{f"{side}.{p}": summary(figures[p]) for side, figures in
                  (("ledger", expected), ("projector", seen["projector"]))
                  for p in (CITY, PROVINCE)})
    finally:
        second.stop()
        # the projector killed for good (when it was this stack's) comes back for the next
        # test of the module, as do any that died
        stack.services.start_missing()
        stack.services.restart_dead()
        stack.services.wait_ready(timeout=120)


def kill_broker(settings: Settings) -> int:
    """kill -9 of the embedded broker of this stack: every topic and offset is gone."""
    import psutil

    for process in psutil.process_iter(["cmdline"]):
        line = " ".join(process.info["cmdline"] or [])
        if "tansu" in line and f"tcp://{settings.kafka_bootstrap}" in line:
            process.kill()  # the process that started it reaps it
            host, port = (settings.kafka_bootstrap or "").rsplit(":", 1)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                try:
                    socket.create_connection((host, int(port)), timeout=0.2).close()
                except OSError:
                    return int(process.pid)
                time.sleep(0.05)
            raise AssertionError("the broker still answers after kill -9")
    raise AssertionError("the stack's broker process was not found")


async def test_the_figures_equal_the_ledger_after_the_broker_restarts_empty(
    coverage_stack: FaultStack,
) -> None:
    """The embedded broker killed and started again on its port (its memory lost): the
    projector's figures never leave the ledger's, and the gauges and snapshots come back
    once a projector leads again; a batch published afterwards is covered too."""
    stack, settings = coverage_stack, coverage_stack.settings
    before = await expected_figures(stack.database_url)
    pid = kill_broker(settings)
    restarted_at = time.monotonic()
    broker = EmbeddedBroker(stack.folder / "broker-again", port=int(
        (settings.kafka_bootstrap or "").rsplit(":", 1)[1]))
    broker.start()
    stack.extras.append(broker)  # type: ignore[arg-type]  # stopped with the stack
    await ensure_topics(settings)
    record("fault.coverage-broker-kill", pid=pid)

    url = f"http://{settings.http_host}:{settings.projector_port}/coverage"
    assert by_programme(await asyncio.to_thread(http_json, url)) in ({}, before), \
        "the projector's figures moved away from the ledger when the broker went away"

    async def running_again() -> bool:
        stack.services.restart_dead()  # a supervisor, as `iuran up` is
        return all((faults.readyz_body(settings, n) or {}).get("ready")
                   for n in stack.services.processes)

    assert await wait_for(running_again, within=120, interval=1.0)
    events = [varied(random.Random(7)) for _ in range(10)]
    await publish_paced(settings, TOPIC_REGISTRATIONS, [as_message(e) for e in events],
                        chunks=1, pause=0, progress=Progress())
    await settled_ledger(stack)
    expected = await expected_figures(stack.database_url)
    assert expected != before, "the batch after the restart booked or held nothing"

    seen: dict[str, Any] = {}

    async def all_equal() -> bool:
        stack.services.restart_dead()
        body = await asyncio.to_thread(http_json, url)
        seen["projector"] = by_programme(body)
        snapshots = {s["programme"]: s for s in (body if isinstance(body, list) else [])}
        seen["gauges"] = await asyncio.to_thread(gauges, settings)
        seen["gauges_expected"] = {p: gauges_expected(s) for p, s in snapshots.items()}
        return seen["projector"] == expected and seen["gauges"] == seen["gauges_expected"]

    assert await wait_for(all_equal, within=120, interval=0.5), (
        f"projector equals the ledger: {seen.get('projector') == expected}; "
        f"gauges {seen.get('gauges')} against {seen.get('gauges_expected')}; "
        f"readiness {[faults.readyz_body(settings, n) for n in stack.services.processes]}")
    converged = round(time.monotonic() - restarted_at, 2)

    async def topic_equal() -> bool:
        latest = await latest_snapshots(settings)
        return {p: as_figures(s) for p, s in latest.items()} == expected

    assert await wait_for(topic_equal, within=60, interval=1.0)
    record("fault.coverage-broker", projector_and_gauges_converged_after_restart_s=converged,
           topic_converged_after_restart_s=round(time.monotonic() - restarted_at, 2))
