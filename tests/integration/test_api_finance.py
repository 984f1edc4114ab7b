"""The finance API (FastAPI app over ASGI, real PostgreSQL behind it): auth and roles,
filters, keyset paging, NIK masking, CSV/XLSX exports, readable 4xx."""

from __future__ import annotations

import asyncio
import csv
import io
import logging
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import asyncpg
import httpx
import openpyxl
import pytest
from pydantic import SecretStr

from schemas.events import Category, PaymentConfirmed
from services.api.app import create_app
from services.api.auth import ApiSettings, ApiToken
from services.domain.nik import mask_nik
from services.domain.programme import Billing, Programme, load_programmes
from services.ledger import book
from services.ledger.bills import issue_bill
from services.ledger.budget import ensure_allocation
from services.ledger.payments import apply_payment
from services.runtime.settings import Settings
from tests.support.ledger import (
    IN_FISCAL_2025,
    NikSource,
    programme_copy,
    schedule,
    scratch_database,
)

pytestmark = pytest.mark.integration

PREMIUM = 16_800
FINANCE = {"Authorization": "Bearer finance-token-0123456789"}
OPS = {"Authorization": "Bearer ops-token-0123456789abc"}
AUDITOR = {"Authorization": "Bearer auditor-token-0123456789"}
OPD_DISHUB = {"Authorization": "Bearer opd-dishub-token-0123456789"}
OPD_DISPANGTAN = {"Authorization": "Bearer opd-dispangtan-token-0123456789"}
MONTHS = ["2025-12", "2026-01", "2026-02"]


class World:
    """What the tests booked: six workers, three months each, one of them held."""

    def __init__(self, programme: Programme, workers: list[dict[str, Any]]) -> None:
        self.programme = programme
        self.workers = workers

    def nik(self, index: int) -> str:
        return str(self.workers[index]["nik"])


@pytest.fixture(scope="module")
async def world_url(database_url: str) -> AsyncIterator[tuple[World, str]]:
    async with scratch_database(database_url, prefix="iuran_api") as url:
        malang = load_programmes(Settings().programmes_dir)["malang-2025"]
        programme = programme_copy(malang, budget_idr=17 * PREMIUM,  # the 18th month is held
                                   billing=Billing())
        niks = NikSource().take(6)
        layout = [("DISHUB", Category.SOPIR_ANGKOT, "Klojen"),
                  ("DISHUB", Category.OJEK_ONLINE, "Sukun"),
                  ("DINSOS", Category.UMKM, "Klojen"),
                  ("DINSOS", Category.UMKM, "Blimbing"),
                  ("SATPOLPP", Category.LINMAS, "Lowokwaru"),
                  ("DISPANGTAN", Category.KELOMPOK_TANI, "Kedungkandang")]
        workers = [{"nik": n, "opd_code": o, "category": c.value, "kecamatan": k}
                   for n, (o, c, k) in zip(niks, layout, strict=True)]
        connection = await asyncpg.connect(url)
        try:
            await book.prepare(connection)
            await ensure_allocation(connection, programme)
            await book.book_schedules(connection, [
                schedule(programme, w["nik"], MONTHS, opd_code=w["opd_code"],
                         category=Category(w["category"]), kecamatan=w["kecamatan"])
                for w in workers])
            bill = await issue_bill(connection, programme, "2025-12", issued_by="test",
                                    today=IN_FISCAL_2025)
            assert bill is not None and bill.amount_idr == 6 * PREMIUM
            for amount, reference in ((6 * PREMIUM, "BPJS-PAID"), (PREMIUM, "BPJS-SHORT")):
                await apply_payment(connection, PaymentConfirmed(
                    payment_id=uuid.uuid4(), programme=programme.id,
                    period="2025-12" if reference == "BPJS-PAID" else "2026-01",
                    amount_idr=amount, reference=reference,
                    paid_at=datetime(2025, 12, 12, tzinfo=UTC)))
        finally:
            await connection.close()
        yield World(programme, workers), url


@pytest.fixture(scope="module")
def world(world_url: tuple[World, str]) -> World:
    return world_url[0]


@pytest.fixture(scope="module")
async def client(world_url: tuple[World, str]) -> AsyncIterator[httpx.AsyncClient]:
    settings = ApiSettings(tokens=[
        ApiToken(token=SecretStr("finance-token-0123456789"), roles=("finance",), name="bpkad"),
        ApiToken(token=SecretStr("ops-token-0123456789abc"), roles=("ops",), name="noc"),
        ApiToken(token=SecretStr("auditor-token-0123456789"), roles=("auditor",), name="bpk"),
        *(ApiToken(token=SecretStr(f"opd-{opd.lower()}-token-0123456789"), roles=("opd",),
                   name=opd.lower(), opd_code=opd, programmes=(world_url[0].programme.id,))
          for opd in ("DISHUB", "DISPANGTAN")),
    ], max_page_size=50)
    app = create_app(world_url[1], settings)
    async with app.router.lifespan_context(app):
        for _ in range(100):
            if app.state.database.pool is not None:
                break
            await asyncio.sleep(0.05)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as http:
            yield http


async def test_ops_endpoints_need_no_token(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok", "service": "api"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"ready": True, "service": "api", "detail": "ok"}
    metrics = await client.get("/metrics")
    assert metrics.status_code == 200
    assert 'iuran_service_ready{service="api"} 1.0' in metrics.text
    assert "/contributions" in (await client.get("/openapi.json")).json()["paths"]


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer nope"},
                                     {"Authorization": "Basic Zm9vOmJhcg=="}])
async def test_no_or_bad_token_is_401(client: httpx.AsyncClient,
                                      headers: dict[str, str]) -> None:
    response = await client.get("/contributions", headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize("path", ["/discrepancies", "/export/contributions",
                                  "/budget/changes", "/workers/3573010101900001/history"])
async def test_ops_may_not_read_what_is_for_finance(client: httpx.AsyncClient,
                                                    path: str) -> None:
    response = await client.get(path, headers=OPS)
    assert response.status_code == 403
    assert "role ops may not use this endpoint" in response.json()["detail"]


async def test_filters_return_exactly_the_matching_contributions(
    client: httpx.AsyncClient, world: World
) -> None:
    response = await client.get("/contributions", headers=FINANCE, params={
        "programme": world.programme.id, "opd_code": "DINSOS", "period_from": "2026-01",
        "period_to": "2026-02", "status": "booked"})
    assert response.status_code == 200
    got = [(i["nik"], i["period"], i["status"], i["amount_idr"], i["category"])
           for i in response.json()["items"]]
    assert sorted(got) == sorted((world.nik(i), p, "booked", PREMIUM, "umkm")
                                 for i in (2, 3) for p in ("2026-01", "2026-02"))
    assert response.json()["next_cursor"] is None

    by_kecamatan = await client.get("/contributions", headers=FINANCE, params={
        "programme": world.programme.id, "kecamatan": "Klojen", "category": "sopir_angkot"})
    assert {(i["nik"], i["period"]) for i in by_kecamatan.json()["items"]} == {
        (world.nik(0), p) for p in MONTHS}

    paid = await client.get("/contributions", headers=AUDITOR,
                            params={"programme": world.programme.id, "status": "paid"})
    assert sorted(i["nik"] for i in paid.json()["items"]) == sorted(world.nik(i) for i in range(6))
    assert {i["period"] for i in paid.json()["items"]} == {"2025-12"}

    held = await client.get("/contributions", headers=FINANCE,
                            params={"programme": world.programme.id, "status": "held"})
    assert [(i["nik"], i["period"]) for i in held.json()["items"]] == [(world.nik(5), "2026-02")]

    one = await client.get("/contributions", headers=FINANCE, params={"nik": world.nik(4)})
    assert [(i["period"], i["opd_code"]) for i in one.json()["items"]] == [
        (p, "SATPOLPP") for p in MONTHS]


async def test_keyset_paging_walks_every_row_once_in_order(
    client: httpx.AsyncClient, world: World
) -> None:
    seen: list[tuple[str, str]] = []
    cursor = None
    pages = 0
    while True:
        params = {"programme": world.programme.id, "limit": 4}
        if cursor:
            params["cursor"] = cursor
        body = (await client.get("/contributions", headers=FINANCE, params=params)).json()
        seen += [(i["period"], i["contribution_id"]) for i in body["items"]]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert pages == 5  # 18 rows, 4 a page
    assert len(seen) == 18 and len(set(seen)) == 18
    assert seen == sorted(seen)


async def test_ops_sees_masked_niks_and_cannot_search_by_nik(
    client: httpx.AsyncClient, world: World, caplog: pytest.LogCaptureFixture
) -> None:
    params = {"programme": world.programme.id, "period_from": "2025-12",
              "period_to": "2025-12"}
    with caplog.at_level(logging.INFO, logger="services.api.app"):
        masked = await client.get("/contributions", headers=OPS, params=params)
        full = await client.get("/contributions", headers=FINANCE, params=params)
    assert sorted(i["nik"] for i in masked.json()["items"]) == sorted(
        mask_nik(w["nik"]) for w in world.workers)
    assert all(i["nik"].count("*") == 10 for i in masked.json()["items"])
    assert sorted(i["nik"] for i in full.json()["items"]) == sorted(
        w["nik"] for w in world.workers)
    audit = [r.getMessage() for r in caplog.records if "personal data read" in r.getMessage()]
    assert audit == [
        "personal data read: token=noc role=ops endpoint=/contributions view=contributions "
        "rows=6 masked=True",
        "personal data read: token=bpkad role=finance endpoint=/contributions "
        "view=contributions rows=6 masked=False",
    ]
    assert not any(w["nik"] in r.getMessage() for r in caplog.records for w in world.workers)
    search = await client.get("/contributions", headers=OPS, params={"nik": world.nik(0)})
    assert search.status_code == 403

    arrears = await client.get("/arrears", headers=OPS,
                               params={"programme": world.programme.id, "lapse_risk": "false"})
    assert sorted((i["nik"], i["unpaid_months"], i["held_months"])
                  for i in arrears.json()["items"]) == sorted(
        (mask_nik(w["nik"]), 2, 1 if n == 5 else 0) for n, w in enumerate(world.workers))


@pytest.mark.parametrize(("params", "message"), [
    ({"period_from": "2025-13"}, "'2025-13' is not a month"),
    ({"period_to": "25-12"}, "'25-12' is not a month"),
    ({"period_from": "2026-02", "period_to": "2025-12"}, "period_from 2026-02 is after"),
    ({"limit": "100000"}, "less than or equal to 50"),
    ({"limit": "0"}, "greater than or equal to 1"),
    ({"status": "lost"}, "'booked', 'held', 'cancelled', 'billed' or 'paid'"),
    ({"cursor": "not-a-cursor"}, "cursor is not valid"),
    ({"nik": "12345"}, "a NIK is exactly 16 digits"),
    ({"category": "pilot"}, "ojek_online"),
])
async def test_bad_parameters_are_422_with_a_reason(
    client: httpx.AsyncClient, params: dict[str, str], message: str
) -> None:
    response = await client.get("/contributions", headers=FINANCE, params=params)
    assert response.status_code == 422
    assert message in response.text


async def test_monthly_bill_budget_outstanding_discrepancies(
    client: httpx.AsyncClient, world: World
) -> None:
    programme = world.programme.id
    bill = (await client.get("/monthly-bill", headers=OPS,
                             params={"programme": programme, "period": "2026-02"})).json()
    assert bill["due_date"] == "2026-02-18"  # 15 Feb a Sunday, 16 Feb cuti bersama, 17 Feb Imlek
    assert bill["totals"] == {"workers": 5, "amount_idr": 5 * PREMIUM, "jkk_idr": 50_000,
                              "jkm_idr": 34_000, "billed_idr": 0, "paid_idr": 0,
                              "unbilled_idr": 5 * PREMIUM}
    assert [(i["opd_code"], i["workers"]) for i in bill["items"]] == [
        ("DINSOS", 2), ("DISHUB", 2), ("SATPOLPP", 1)]
    missing = await client.get("/monthly-bill", headers=OPS, params={"period": "2026-00"})
    assert missing.status_code == 422

    budget = (await client.get("/budget", headers=OPS, params={"programme": programme})).json()
    assert budget["items"] == [{
        "programme": programme, "funding_source": "DBHCHT", "fiscal_year": 2025,
        "allocated_idr": 17 * PREMIUM, "booked_idr": 17 * PREMIUM,
        "paid_idr": 6 * PREMIUM, "held_idr": PREMIUM, "held_contributions": 1,
        "remaining_idr": 0, "changed_at": budget["items"][0]["changed_at"], "credit_idr": 0}]

    outstanding = (await client.get("/outstanding", headers=OPS,
                                    params={"programme": programme})).json()
    assert [(i["period"], i["contributions"], i["outstanding_idr"])
            for i in outstanding["items"]] == [("2026-01", 6, 6 * PREMIUM),
                                               ("2026-02", 5, 5 * PREMIUM)]

    bills = (await client.get("/bills", headers=OPS, params={"programme": programme})).json()
    assert [(b["period"], b["sequence"], b["status"], b["payment_reference"])
            for b in bills["items"]] == [("2025-12", 1, "paid", "BPJS-PAID")]

    found = (await client.get("/discrepancies", headers=AUDITOR,
                              params={"programme": programme, "status": "open"})).json()
    assert [(d["kind"], d["paid_idr"], d["expected_idr"], d["reference"])
            for d in found["items"]] == [("unknown_bill", PREMIUM, 0, "BPJS-SHORT")]


async def test_csv_export_streams_the_filtered_rows(
    client: httpx.AsyncClient, world: World
) -> None:
    response = await client.get("/export/monthly_bill", headers=FINANCE, params={
        "programme": world.programme.id, "period_from": "2025-12", "period_to": "2025-12",
        "format": "csv"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.headers["content-disposition"] == \
        'attachment; filename="iuran-monthly_bill.csv"'
    p = world.programme.id
    assert response.content.decode() == (
        "programme,period,opd_code,due_date,workers,amount_idr,jkk_idr,jkm_idr,billed_idr,"
        "paid_idr,unbilled_idr\r\n"
        f"{p},2025-12,DINSOS,2025-12-15,2,33600,20000,13600,33600,33600,0\r\n"
        f"{p},2025-12,DISHUB,2025-12-15,2,33600,20000,13600,33600,33600,0\r\n"
        f"{p},2025-12,DISPANGTAN,2025-12-15,1,16800,10000,6800,16800,16800,0\r\n"
        f"{p},2025-12,SATPOLPP,2025-12-15,1,16800,10000,6800,16800,16800,0\r\n")

    people = await client.get("/export/contributions", headers=AUDITOR,
                              params={"nik": world.nik(1), "format": "csv"})
    rows = list(csv.DictReader(io.StringIO(people.content.decode())))
    assert [(r["nik"], r["period"], r["status"], r["opd_code"], r["bill_sequence"])
            for r in rows] == [(world.nik(1), "2025-12", "paid", "DISHUB", "1"),
                               (world.nik(1), "2026-01", "booked", "DISHUB", ""),
                               (world.nik(1), "2026-02", "booked", "DISHUB", "")]
    bad = await client.get("/export/budget_utilisation", headers=FINANCE,
                           params={"opd_code": "DISHUB"})
    assert bad.status_code == 422
    assert "cannot be filtered by opd_code" in bad.json()["detail"]


async def test_xlsx_export_is_a_workbook_with_the_rows(
    client: httpx.AsyncClient, world: World
) -> None:
    response = await client.get("/export/arrears", headers=FINANCE, params={
        "programme": world.programme.id, "format": "xlsx"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith(
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
    sheet = openpyxl.load_workbook(io.BytesIO(response.content), read_only=True)["arrears"]
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0][:7] == ("nik", "programme", "opd_code", "category", "kecamatan",
                           "unpaid_months", "unpaid_idr")
    assert sorted((r[0], r[2], r[5], r[6], r[11]) for r in rows[1:]) == sorted(
        (w["nik"], w["opd_code"], 2, 2 * PREMIUM, False) for w in world.workers)


async def test_worker_history_for_finance(client: httpx.AsyncClient, world: World) -> None:
    response = await client.get(f"/workers/{world.nik(5)}/history", headers=FINANCE)
    events = [(i["period"], i["event"]) for i in response.json()["items"]]
    assert sorted(events) == sorted([
        ("2025-12", "booked"), ("2025-12", "billed"), ("2025-12", "paid"),
        ("2026-01", "booked"), ("2026-02", "held")])


async def test_cover_expiry_and_the_waiting_list_per_opd(client: httpx.AsyncClient,
                                                         world: World) -> None:
    response = await client.get("/cover-expiry", params={
        "programme": world.programme.id, "opd_code": "DISHUB"}, headers=FINANCE)
    assert response.status_code == 200, response.text
    items = response.json()["items"]
    assert sorted(i["nik"] for i in items) == sorted([world.nik(0), world.nik(1)])
    assert {(i["covered_through"], i["paid_through"], i["renewed_to"]) for i in items} == {
        ("2026-02", "2025-12", None)}
    assert {i["inactive_from"] for i in items} == {"2026-03"}
    masked = (await client.get("/cover-expiry", params={"programme": world.programme.id},
                               headers=OPS)).json()["items"]
    assert masked and all("*" in i["nik"] for i in masked)
    bad = await client.get("/cover-expiry", params={"months_left_max": "-1"}, headers=FINANCE)
    assert bad.status_code == 422

    waiting = (await client.get("/waiting-list", params={"programme": world.programme.id},
                                headers=FINANCE)).json()["items"]
    assert [(w["place"], w["nik"], w["months"], w["reason"]) for w in waiting] == [
        (1, world.nik(5), 1, "budget_exceeded")]
    assert (await client.get("/waiting-list", params={"opd_code": "DISHUB"},
                             headers=FINANCE)).json()["items"] == []


async def test_an_opd_pages_through_its_own_workers_cover_end_and_waiting_list(
    client: httpx.AsyncClient, world: World
) -> None:
    first = await client.get("/v1/cover-expiry", params={
        "programme": world.programme.id, "limit": 1}, headers=OPD_DISHUB)
    assert first.status_code == 200, first.text
    second = await client.get("/v1/cover-expiry", params={
        "programme": world.programme.id, "limit": 1, "cursor": first.json()["next_cursor"]},
        headers=OPD_DISHUB)
    assert second.status_code == 200, second.text
    items = first.json()["items"] + second.json()["items"]
    assert sorted(i["nik"] for i in items) == sorted([world.nik(0), world.nik(1)])
    assert {(i["covered_through"], i["inactive_from"]) for i in items} == {("2026-02", "2026-03")}

    waiting = await client.get("/v1/waiting-list", headers=OPD_DISPANGTAN)
    assert waiting.status_code == 200, waiting.text
    assert [(w["place"], w["nik"], w["months"]) for w in waiting.json()["items"]] == [
        (1, world.nik(5), 1)]
    assert (await client.get("/v1/waiting-list", headers=OPD_DISHUB)).json()["items"] == []
