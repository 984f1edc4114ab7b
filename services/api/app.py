"""The read API over the finance views (FastAPI). OpenAPI at /docs.

Every data endpoint needs a bearer token (see services.api.auth). NIKs are masked for roles
without personal-data access; each read of personal data is logged with the token's name
and role, the endpoint and the row count, never the data.
"""

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import date, datetime
from typing import Annotated, Any, Literal

import asyncpg
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest
from pydantic import BaseModel

from schemas.events import Category
from services.api.auth import ApiSettings, Principal, TokenBook
from services.api.params import (
    Code,
    NikParam,
    PeriodParam,
    check_range,
    decode_cursor,
    encode_cursor,
)
from services.domain.nik import mask_nik
from services.ledger import export
from services.ledger.views import VIEWS, View, select
from services.runtime import metrics
from services.runtime.database import RETRYABLE

log = logging.getLogger(__name__)

SERVICE = "api"
ALL_ROLES = frozenset({"finance", "ops", "auditor"})
PERSONAL = frozenset({"finance", "auditor"})

_bearer = HTTPBearer(auto_error=False, description="A token from IURAN_API_TOKENS")


class Page(BaseModel):
    items: list[dict[str, Any]]
    next_cursor: str | None = None


class Listing(BaseModel):
    items: list[dict[str, Any]]


class Database:
    """The connection pool, created inside the running loop; retried while PostgreSQL is away."""

    def __init__(self, url: str, size: int) -> None:
        self.url = url
        self.size = size
        self.pool: asyncpg.Pool | None = None
        self.detail = "PostgreSQL not connected yet"

    async def connect_forever(self) -> None:
        delay = 0.2
        while self.pool is None:
            try:
                self.pool = await asyncpg.create_pool(self.url, min_size=1, max_size=self.size)
                self.detail = "ok"
            except RETRYABLE as exc:
                self.detail = f"PostgreSQL unreachable ({type(exc).__name__})"
                log.warning("%s; retrying in %.1fs", self.detail, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    def require(self) -> asyncpg.Pool:
        if self.pool is None:
            raise HTTPException(503, detail=self.detail)
        return self.pool


def _masker(principal: Principal) -> Callable[[dict[str, Any]], dict[str, Any]] | None:
    if principal.personal_data:
        return None

    def mask(row: dict[str, Any]) -> dict[str, Any]:
        if row.get("nik") is not None:
            row["nik"] = mask_nik(row["nik"])
        return row

    return mask


def _key_text(value: object) -> str:
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)


def _audit(principal: Principal, endpoint: str, spec: View, rows: int) -> None:
    if spec.personal:
        log.info("personal data read: token=%s role=%s endpoint=%s view=%s rows=%d masked=%s",
                 principal.name, principal.role, endpoint, spec.name, rows,
                 not principal.personal_data)


RouterFactory = Callable[[Callable[[], asyncpg.Pool]], APIRouter]


def create_app(
    database_url: str, api_settings: ApiSettings, routers: Sequence[RouterFactory] = ()
) -> FastAPI:
    """The FastAPI application; the pool is opened by the lifespan (or by tests).

    ``routers`` add endpoints of other packages: each factory gets a function returning the
    pool (503 while PostgreSQL is not connected) and returns an APIRouter."""
    database = Database(database_url, api_settings.pool_size)
    tokens = TokenBook(api_settings.tokens)
    max_page = api_settings.max_page_size

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        connecting = asyncio.create_task(database.connect_forever())
        try:
            yield
        finally:
            connecting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await connecting
            if database.pool is not None:
                await database.pool.close()
                database.pool = None

    app = FastAPI(
        title="iuran finance API",
        version="1",
        description="Read-only access to the ledger's finance views: contributions, monthly "
                    "bills, budget utilisation, outstanding, discrepancies and arrears, with "
                    "CSV/XLSX export. Bearer tokens with roles finance, ops and auditor; NIKs "
                    "are masked for ops.",
        lifespan=lifespan,
    )

    @app.exception_handler(asyncpg.exceptions.DataError)
    async def bad_value(_: Request, exc: asyncpg.exceptions.DataError) -> JSONResponse:
        # a value PostgreSQL cannot take as given (a NUL character, a cursor that was
        # tampered with): the caller's mistake, said without the database's own words
        log.info("request refused by PostgreSQL as bad data (%s)", type(exc).__name__)
        return JSONResponse(status_code=422, content={
            "detail": "a parameter holds a value that cannot be used (control characters, "
                      "or a cursor that is not the next_cursor of a previous page)"})
    app.state.database = database

    def authorised(roles: frozenset[str]) -> Callable[..., Awaitable[Principal]]:
        async def dependency(
            credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
        ) -> Principal:
            if credentials is None or credentials.scheme.lower() != "bearer":
                raise HTTPException(401, detail="a bearer token is required",
                                    headers={"WWW-Authenticate": "Bearer"})
            principal = tokens.principal(credentials.credentials)
            if principal is None:
                raise HTTPException(401, detail="the token is not valid",
                                    headers={"WWW-Authenticate": "Bearer"})
            if not principal.roles & roles:
                raise HTTPException(403, detail=f"role {principal.role} may not use this "
                                                f"endpoint (needs one of "
                                                f"{', '.join(sorted(roles))})")
            return principal
        return dependency

    anyone = Depends(authorised(ALL_ROLES))
    personal = Depends(authorised(PERSONAL))

    async def page(spec: View, principal: Principal, endpoint: str, filters: dict[str, Any],
                   limit: int, cursor: str | None) -> Page:
        if filters.get("nik") is not None and not principal.personal_data:
            raise HTTPException(403, detail=f"role {principal.role} may not search by NIK")
        after = decode_cursor(cursor, len(spec.key))
        sql, args = select(spec, filters, after=after, limit=limit + 1)
        rows = [dict(r) for r in await database.require().fetch(sql, *args)]
        more = len(rows) > limit
        rows = rows[:limit]
        next_cursor = None
        if more:
            next_cursor = encode_cursor([_key_text(rows[-1][c]) for c, _ in spec.key])
        mask = _masker(principal)
        if mask is not None:
            rows = [mask(r) for r in rows]
        _audit(principal, endpoint, spec, len(rows))
        return Page(items=rows, next_cursor=next_cursor)

    async def listing(spec: View, filters: dict[str, Any]) -> Listing:
        sql, args = select(spec, filters, limit=max_page)
        return Listing(items=[dict(r) for r in await database.require().fetch(sql, *args)])

    Limit = Annotated[int, Query(ge=1, le=max_page, description=f"1 to {max_page}")]
    Cursor = Annotated[str | None, Query(description="next_cursor of the previous page")]

    ops = APIRouter(tags=["operations"])

    @ops.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok", "service": SERVICE}

    @ops.get("/readyz")
    async def readyz() -> JSONResponse:
        ready, detail = False, database.detail
        if database.pool is not None:
            try:
                ready = bool(await asyncio.wait_for(database.pool.fetchval(
                    "SELECT to_regclass('finance.contributions') IS NOT NULL"), timeout=3))
                detail = "ok" if ready else "the ledger schema is not migrated yet"
            except (*RETRYABLE, asyncpg.PostgresError) as exc:
                detail = f"PostgreSQL unreachable ({type(exc).__name__})"
        metrics.SERVICE_READY.labels(SERVICE).set(1 if ready else 0)
        return JSONResponse({"ready": ready, "service": SERVICE, "detail": detail},
                            status_code=200 if ready else 503)

    @ops.get("/metrics")
    async def prometheus_metrics() -> Response:
        return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)

    data = APIRouter(tags=["finance"])

    @data.get("/contributions", response_model=Page)
    async def contributions(
        request: Request,
        principal: Annotated[Principal, anyone],
        programme: Code = None,
        period_from: PeriodParam = None,
        period_to: PeriodParam = None,
        opd_code: Code = None,
        category: Category | None = None,
        kecamatan: Code = None,
        status: Literal["booked", "held", "cancelled", "billed", "paid"] | None = None,
        nik: NikParam = None,
        limit: Limit = 100,
        cursor: Cursor = None,
    ) -> Page:
        """Contributions with their status, in (period, contribution_id) order."""
        check_range(period_from, period_to)
        filters = {"programme": programme, "period_from": period_from, "period_to": period_to,
                   "opd_code": opd_code, "category": category.value if category else None,
                   "kecamatan": kecamatan, "status": status, "nik": nik}
        return await page(VIEWS["contributions"], principal, request.url.path, filters, limit,
                          cursor)

    @data.get("/monthly-bill")
    async def monthly_bill(
        principal: Annotated[Principal, anyone],
        period: Annotated[PeriodParam, Query(description="the month, YYYY-MM")],
        programme: Code = None,
        opd_code: Code = None,
    ) -> dict[str, Any]:
        """What is payable to BPJS for one month, per OPD, with totals."""
        if period is None:
            raise HTTPException(422, detail="period is required (YYYY-MM)")
        result = await listing(VIEWS["monthly_bill"], {
            "programme": programme, "period_from": period, "period_to": period,
            "opd_code": opd_code})
        items = result.items
        totals = {k: sum(r[k] for r in items) for k in (
            "workers", "amount_idr", "jkk_idr", "jkm_idr", "billed_idr", "paid_idr",
            "unbilled_idr")}
        due = min((r["due_date"] for r in items), default=None)
        return {"period": period, "programme": programme, "due_date": due, "totals": totals,
                "items": items}

    @data.get("/bills", response_model=Listing)
    async def bills(
        principal: Annotated[Principal, anyone],
        programme: Code = None,
        period_from: PeriodParam = None,
        period_to: PeriodParam = None,
        status: Literal["open", "past_due", "paid"] | None = None,
    ) -> Listing:
        """Issued bills (original and supplementary) and whether they are paid."""
        check_range(period_from, period_to)
        return await listing(VIEWS["bills"], {"programme": programme, "period_from": period_from,
                                              "period_to": period_to, "status": status})

    @data.get("/budget", response_model=Listing)
    async def budget(principal: Annotated[Principal, anyone],
                     programme: Code = None) -> Listing:
        """Budget utilisation per programme, funding source and fiscal year."""
        return await listing(VIEWS["budget_utilisation"], {"programme": programme})

    @data.get("/budget/changes", response_model=Listing)
    async def budget_changes(principal: Annotated[Principal, personal],
                             programme: Code = None) -> Listing:
        """Every allocation ever set, with its reason and who set it."""
        return await listing(VIEWS["budget_changes"], {"programme": programme})

    @data.get("/outstanding", response_model=Listing)
    async def outstanding(
        principal: Annotated[Principal, anyone],
        programme: Code = None,
        period_from: PeriodParam = None,
        period_to: PeriodParam = None,
    ) -> Listing:
        """Booked and not yet paid, per programme and month."""
        check_range(period_from, period_to)
        return await listing(VIEWS["outstanding"], {
            "programme": programme, "period_from": period_from, "period_to": period_to})

    @data.get("/discrepancies", response_model=Page)
    async def discrepancies(
        request: Request,
        principal: Annotated[Principal, personal],
        programme: Code = None,
        period_from: PeriodParam = None,
        period_to: PeriodParam = None,
        status: Literal["open", "resolved"] | None = None,
        limit: Limit = 100,
        cursor: Cursor = None,
    ) -> Page:
        """Payments not applied (partial, excess, unknown bill, ...) for a person to resolve."""
        check_range(period_from, period_to)
        return await page(VIEWS["discrepancies"], principal, request.url.path, {
            "programme": programme, "period_from": period_from, "period_to": period_to,
            "status": status}, limit, cursor)

    @data.get("/arrears", response_model=Page)
    async def arrears(
        request: Request,
        principal: Annotated[Principal, anyone],
        programme: Code = None,
        opd_code: Code = None,
        category: Category | None = None,
        kecamatan: Code = None,
        lapse_risk: bool | None = None,
        nik: NikParam = None,
        limit: Limit = 100,
        cursor: Cursor = None,
    ) -> Page:
        """Workers with unpaid months past their due date; lapse_risk = 3 or more."""
        return await page(VIEWS["arrears"], principal, request.url.path, {
            "programme": programme, "opd_code": opd_code,
            "category": category.value if category else None, "kecamatan": kecamatan,
            "lapse_risk": lapse_risk, "nik": nik}, limit, cursor)

    @data.get("/workers/{nik}/history", response_model=Listing)
    async def worker_history(request: Request, principal: Annotated[Principal, personal],
                             nik: str) -> Listing:
        """Everything that happened to one worker's months (finance and auditor only)."""
        if len(nik) != 16 or not nik.isdigit():
            raise HTTPException(422, detail="a NIK is exactly 16 digits")
        spec = VIEWS["worker_history"]
        result = await listing(spec, {"nik": nik})
        _audit(principal, "/workers/{nik}/history", spec, len(result.items))
        return result

    @data.get("/export/{view}", response_class=StreamingResponse, responses={
        200: {"content": {"text/csv": {}, export.MEDIA_TYPES["xlsx"]: {}},
              "description": "the rows of the view, streamed"}})
    async def export_view(
        principal: Annotated[Principal, personal],
        view: Literal["contributions", "monthly_bill", "bills", "budget_utilisation",
                      "budget_changes", "outstanding", "discrepancies", "arrears",
                      "worker_history"],
        format: Literal["csv", "xlsx"] = "csv",  # noqa: A002 - the public parameter name
        programme: Code = None,
        period_from: PeriodParam = None,
        period_to: PeriodParam = None,
        opd_code: Code = None,
        category: Category | None = None,
        kecamatan: Code = None,
        status: Code = None,
        nik: NikParam = None,
    ) -> StreamingResponse:
        """CSV or XLSX of a finance view with the same filters as the lists, streamed."""
        check_range(period_from, period_to)
        spec = VIEWS[view]
        wanted = {"programme": programme, "period_from": period_from, "period_to": period_to,
                  "opd_code": opd_code, "category": category.value if category else None,
                  "kecamatan": kecamatan, "status": status, "nik": nik}
        unsupported = sorted(k for k, v in wanted.items() if v is not None
                             and k not in spec.filters)
        if unsupported:
            raise HTTPException(422, detail=f"finance.{view} cannot be filtered by "
                                            f"{', '.join(unsupported)}")
        if status is not None and status not in spec.statuses:
            raise HTTPException(422, detail=f"status of finance.{view} is one of "
                                            f"{', '.join(sorted(spec.statuses))}")
        sql, args = select(spec, wanted)
        pool = database.require()
        counter = export.Counter()
        mask = _masker(principal)

        async def body() -> AsyncIterator[bytes]:
            async with pool.acquire() as connection:
                chunks = export.fetch_chunks(connection, sql, args)
                if format == "csv":
                    stream = export.csv_stream(chunks, spec.columns, mask, counter)
                else:
                    stream = export.xlsx_stream(chunks, spec.columns, view, mask, counter)
                async for piece in stream:
                    yield piece
            _audit(principal, f"/export/{view}", spec, counter.rows)

        filename = f"iuran-{view}.{format}"
        return StreamingResponse(body(), media_type=export.MEDIA_TYPES[format],
                                 headers={"Content-Disposition":
                                          f'attachment; filename="{filename}"'})

    app.include_router(ops)
    app.include_router(data)
    for factory in routers:
        app.include_router(factory(database.require))
    return app
