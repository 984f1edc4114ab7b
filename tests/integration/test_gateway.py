"""The registration gateway of the running stack (validator, ledger, projector and API
processes), driven over HTTP as an OPD's system would: an upload with good, bad and
cross-OPD-duplicate rows ends with every row's outcome; the same request twice publishes
nothing twice; one OPD can neither see nor change another OPD's workers; limits answer
413/422 saying which."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import date

import asyncpg
import httpx
import pytest

from schemas.events import TOPIC_REGISTRATIONS
from services.runtime.settings import Settings
from services.runtime.stack import ServiceProcesses
from tests.support.gateway import (
    DINSOS,
    DISHUB,
    DISNAKER,
    base_url,
    outcomes,
    template_csv,
    template_row,
)
from tests.support.kafka import publish
from tests.support.workers import (
    as_message,
    correction,
    deregistration,
    registration,
    unique_nik,
)

pytestmark = pytest.mark.integration

CSV = {"Content-Type": "text/csv"}
JSON = {"Content-Type": "application/json"}


@pytest.fixture
async def client(stack: ServiceProcesses, settings: Settings
                 ) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=base_url(settings), timeout=60) as http:
        yield http


async def register_json(client: httpx.AsyncClient, headers: dict[str, str],
                        events: list[object]) -> httpx.Response:
    return await client.post("/v1/registrations", headers={**headers, **JSON},
                             json=[e.model_dump(mode="json") for e in events])  # type: ignore[attr-defined]


async def published(db: asyncpg.Pool, submission_id: str) -> int:
    count: int = await db.fetchval(
        "SELECT count(*) FROM registry.submission_rows WHERE submission_id = $1 "
        "AND published_at IS NOT NULL", uuid.UUID(submission_id))
    return count


async def test_an_upload_ends_with_every_rows_outcome(
    client: httpx.AsyncClient, db: asyncpg.Pool, stack: ServiceProcesses
) -> None:
    # DINSOS enrolled a worker first (JSON events, its own token)
    taken = registration(opd_code="DINSOS")
    first = await register_json(client, DINSOS, [taken])
    assert first.status_code == 201, first.text
    assert (await outcomes(client, first.json()["submission_id"], DINSOS))["counts"] == {
        "booked": 1}

    good, other = registration(opd_code="DISHUB"), registration(opd_code="DISHUB", sex="F")
    born = date(1988, 3, 14)
    warned = registration(opd_code="DISHUB", born=born)
    body = template_csv([
        template_row(good),                                   # row 2
        template_row(other, months="6"),                      # row 3
        template_row(good, nik="3573"),                       # row 4: not a NIK
        template_row(taken),                                  # row 5: DINSOS pays for it
        template_row(warned, birth_date="1988-03-15"),        # row 6: differs from the NIK
    ])
    key = {"Idempotency-Key": f"dishub-{uuid.uuid4()}"}

    dry = await client.post("/v1/registrations?dry_run=true", headers={**DISHUB, **CSV},
                            content=body)
    assert dry.status_code == 200, dry.text
    assert dry.json()["submission_id"] is None and dry.json()["valid"] == 4
    assert [(e["row"], e["errors"][0]["code"]) for e in dry.json()["errors"]] == [
        (4, "invalid_nik")]

    sent = await client.post("/v1/registrations", headers={**DISHUB, **CSV, **key},
                             content=body)
    assert sent.status_code == 201, sent.text
    receipt = sent.json()
    assert (receipt["rows"], receipt["valid"], receipt["published"]) == (5, 4, 4)
    assert [e["row"] for e in receipt["errors"]] == [4]
    submission_id = receipt["submission_id"]

    again = await client.post("/v1/registrations", headers={**DISHUB, **CSV, **key},
                              content=body)
    assert again.status_code == 200
    assert again.json()["submission_id"] == submission_id
    assert again.json()["published"] == 0
    assert [e["event_id"] for e in again.json()["events"]] == [
        e["event_id"] for e in receipt["events"]]
    assert await db.fetchval("SELECT count(*) FROM registry.submissions WHERE "
                             "submission_id = $1", uuid.UUID(submission_id)) == 1
    assert await published(db, submission_id) == 4

    other_body = await client.post("/v1/registrations", headers={**DISHUB, **CSV, **key},
                                   content=template_csv([template_row(good)]))
    assert other_body.status_code == 422
    assert other_body.json()["detail"]["code"] == "idempotency_key_reused"

    result = await outcomes(client, submission_id, DISHUB)
    rows = {r["row"]: r for r in result["rows"]}
    assert {n: r["status"] for n, r in rows.items()} == {
        2: "booked", 3: "booked", 4: "invalid", 5: "rejected", 6: "booked"}
    assert len(rows[2]["booked_periods"]) == 12 and len(rows[3]["booked_periods"]) == 6
    assert rows[4]["event_id"] is None and rows[4]["errors"][0]["code"] == "invalid_nik"
    assert [e["code"] for e in rows[5]["errors"]] == ["duplicate_enrollment"]
    assert [w["code"] for w in rows[6]["warnings"]] == ["nik_birth_date_mismatch"]
    assert result["counts"] == {"booked": 3, "invalid": 1, "rejected": 1}
    # the OPD reads each message in Bahasa Indonesia; the codes stay as they are
    assert rows[4]["errors"][0]["pesan"].startswith("NIK harus 16 angka")
    assert rows[5]["errors"][0]["pesan"].startswith("Pekerja sudah didaftarkan")
    assert rows[6]["warnings"][0]["pesan"].startswith("Tanggal lahir tidak sama")
    assert receipt["errors"][0]["errors"][0]["pesan"].startswith("NIK harus 16 angka")

    # the same rows for the event ids, as a Kafka publisher asks
    one = await client.get(f"/v1/events/{rows[2]['event_id']}", headers=DISHUB)
    assert one.status_code == 200 and one.json()["status"] == "booked"
    assert (await client.get(f"/v1/events/{rows[2]['event_id']}", headers=DINSOS)
            ).status_code == 404
    assert (await client.get(f"/v1/submissions/{submission_id}", headers=DINSOS)
            ).status_code == 404

    # the API's log names the submission, never a worker
    log = (stack.log_dir / "api.log").read_text(encoding="utf-8", errors="replace")
    assert submission_id in log
    for event in (good, other, warned, taken):
        assert event.worker.nik not in log and event.worker.full_name not in log


async def test_one_opd_cannot_see_or_change_another_opds_workers(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    mine = registration(opd_code="DISHUB")
    sent = await register_json(client, DISHUB, [mine])
    assert sent.status_code == 201, sent.text
    await outcomes(client, sent.json()["submission_id"], DISHUB)
    nik = mine.worker.nik

    own = await client.get(f"/v1/workers/{nik}", headers=DISHUB)
    assert own.status_code == 200, own.text
    worker = own.json()
    assert worker["status"] == "active" and len(worker["covered_periods"]) == 12
    assert worker["payer"] == "Pemerintah Kota Malang (DBHCHT)"
    assert [r["status"] for r in worker["registrations"]] == ["booked"]
    listed = await client.get("/v1/workers", headers=DISHUB, params={"limit": 1000})
    assert nik in {w["nik"] for w in listed.json()["items"]}

    # DINSOS: not found, not listed, not stoppable
    assert (await client.get(f"/v1/workers/{nik}", headers=DINSOS)).status_code == 404
    theirs = await client.get("/v1/workers", headers=DINSOS, params={"limit": 1000})
    assert nik not in {w["nik"] for w in theirs.json()["items"]}
    claim = deregistration(nik, "2026-03", opd_code="DISHUB")
    forged = await register_json(client, DINSOS, [registration(opd_code="DINSOS"), claim])
    assert forged.status_code == 403
    assert forged.json()["detail"]["rows"] == [
        {"row": 2, "opd_code": "DISHUB", "programme": "malang-2025"}]
    stop = await register_json(client, DINSOS, [deregistration(nik, "2026-03",
                                                               opd_code="DINSOS")])
    assert stop.status_code == 201, stop.text
    refused = await outcomes(client, stop.json()["submission_id"], DINSOS)
    assert [e["code"] for e in refused["rows"][0]["errors"]] == [
        "deregistration_not_permitted"]
    assert (await client.get(f"/v1/workers/{nik}", headers=DISHUB)).json()["status"] == "active"

    # DISHUB itself may stop it, through the same gateway
    own_stop = await register_json(client, DISHUB, [deregistration(nik, "2026-03",
                                                                   opd_code="DISHUB")])
    stopped = await outcomes(client, own_stop.json()["submission_id"], DISHUB)
    assert stopped["rows"][0]["status"] == "cancelled"
    assert stopped["rows"][0]["cancelled_periods"][0] == "2026-03"
    after = (await client.get(f"/v1/workers/{nik}", headers=DISHUB)).json()
    assert after["covered_periods"][-1] == "2026-02"


async def test_an_event_published_straight_to_kafka_is_followed_by_its_id(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    event = registration(opd_code="DISHUB")
    await publish(settings, TOPIC_REGISTRATIONS, [as_message(event)])
    path = f"/v1/events/{event.event_id}"
    for _ in range(180):
        found = await client.get(path, headers=DISHUB)
        if found.status_code == 200 and found.json()["status"] == "booked":
            break
        await asyncio.sleep(0.5)
    assert found.status_code == 200 and found.json()["status"] == "booked", found.text
    assert (await client.get(path, headers=DINSOS)).status_code == 404


async def test_a_coordinators_deregistration_is_recorded_under_the_coordinator(
    client: httpx.AsyncClient, db: asyncpg.Pool
) -> None:
    """DISNAKER coordinates the programme: it stops a worker DISHUB enrolled; the record
    names DISNAKER, DISNAKER follows its event, DISHUB does not see it as its own."""
    enrolled = registration(opd_code="DISHUB")
    sent = await register_json(client, DISHUB, [enrolled])
    assert sent.status_code == 201, sent.text
    await outcomes(client, sent.json()["submission_id"], DISHUB)
    stop = deregistration(enrolled.worker.nik, "2026-03", opd_code="DISNAKER")
    stopped = await register_json(client, DISNAKER, [stop])
    assert stopped.status_code == 201, stopped.text
    rows = (await outcomes(client, stopped.json()["submission_id"], DISNAKER))["rows"]
    assert rows[0]["status"] == "cancelled", rows

    recorded = await db.fetchval("SELECT opd_code FROM registry.decisions WHERE event_id = $1",
                                 stop.event_id)
    assert recorded == "DISNAKER"
    path = f"/v1/events/{stop.event_id}"
    own = await client.get(path, headers=DISNAKER)
    assert own.status_code == 200, own.text
    assert (own.json()["opd_code"], own.json()["status"]) == ("DISNAKER", "cancelled")
    assert (await client.get(path, headers=DISHUB)).status_code == 404


async def test_limits_and_refusals_say_which(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    huge = await client.post("/v1/registrations", headers={**DISHUB, **CSV},
                             content=b"x" * (5 * 1024 * 1024 + 1))
    assert huge.status_code == 413 and huge.json()["detail"]["code"] == "body_too_large"
    rows = [template_row(registration(opd_code="DISHUB", nik=unique_nik()))
            for _ in range(5001)]
    many = await client.post("/v1/registrations?dry_run=true", headers={**DISHUB, **CSV},
                             content=template_csv(rows))
    assert many.status_code == 422 and many.json()["detail"]["code"] == "too_many_rows"
    assert "5000" in many.json()["detail"]["message"]
    odd = await client.post("/v1/registrations", headers={**DISHUB, "Content-Type":
                                                          "text/plain"}, content=b"nik")
    assert odd.status_code == 415
    finance = await client.post("/v1/registrations", headers={
        "Authorization": "Bearer iuran-dev-finance-token", **JSON}, content=b"[]")
    assert finance.status_code == 403
    other = await client.post("/v1/registrations?programme=jatim-malang-2026",
                              headers={**DISHUB, **CSV}, content=template_csv([]))
    assert other.status_code == 403
    assert other.json()["detail"]["code"] == "programme_not_allowed"


async def test_the_enrolling_opd_corrects_its_worker_through_the_gateway(
    client: httpx.AsyncClient, db: asyncpg.Pool,
) -> None:
    mine = registration(opd_code="DISHUB")
    sent = await register_json(client, DISHUB, [mine])
    assert sent.status_code == 201, sent.text
    await outcomes(client, sent.json()["submission_id"], DISHUB)
    nik = mine.worker.nik

    theirs = await register_json(client, DINSOS, [correction(nik, opd_code="DINSOS",
                                                             phone="0813-9999-0000")])
    assert theirs.status_code == 201, theirs.text
    refused = await outcomes(client, theirs.json()["submission_id"], DINSOS)
    assert [e["code"] for e in refused["rows"][0]["errors"]] == ["correction_not_permitted"]

    fixed = correction(nik, opd_code="DISHUB", full_name="Budi Santosa")
    own = await register_json(client, DISHUB, [fixed])
    assert own.status_code == 201, own.text
    done = await outcomes(client, own.json()["submission_id"], DISHUB)
    assert done["rows"][0]["status"] == "accepted" and done["rows"][0]["errors"] == []
    stored = await db.fetchval("SELECT corrected FROM registry.corrections WHERE event_id = $1",
                               fixed.event_id)
    assert stored == '{"full_name": "Budi Santosa"}'
    shown = (await client.get(f"/v1/workers/{nik}", headers=DISHUB)).json()
    assert shown["full_name"] == "Budi Santosa"
