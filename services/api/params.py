"""Query parameters of the API, validated with readable messages (422 otherwise). The list
filters are declared here once and shared by every list endpoint as dependencies."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from pydantic import AfterValidator

from schemas.events import Category
from services.domain.periods import PeriodError, parse_period


def _period(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        parse_period(value)
    except PeriodError:
        raise ValueError(
            f"{value!r} is not a month: use YYYY-MM with a month from 01 to 12, e.g. 2025-12"
        ) from None
    return value


def _nik(value: str | None) -> str | None:
    if value is not None and (len(value) != 16 or not value.isascii() or not value.isdigit()):
        raise ValueError("a NIK is exactly 16 digits")
    return value


PeriodParam = Annotated[str | None, AfterValidator(_period)]
NikParam = Annotated[str | None, AfterValidator(_nik)]
Code = Annotated[str | None, Query(min_length=1, max_length=64, pattern=r"^[^\x00-\x1f\x7f]+$")]


def check_range(period_from: str | None, period_to: str | None) -> None:
    if period_from and period_to and period_from > period_to:
        raise HTTPException(422, detail=f"period_from {period_from} is after period_to "
                                        f"{period_to}")


Filters = dict[str, Any]


def _period_range(period_from: PeriodParam = None, period_to: PeriodParam = None) -> Filters:
    check_range(period_from, period_to)
    return {"period_from": period_from, "period_to": period_to}


def _worker_filters(opd_code: Code = None, category: Category | None = None,
                    kecamatan: Code = None, nik: NikParam = None) -> Filters:
    return {"opd_code": opd_code, "category": category.value if category else None,
            "kecamatan": kecamatan, "nik": nik}


def _limit(request: Request, limit: Annotated[int, Query(
        ge=1, description="rows per page, 1 to IURAN_API_MAX_PAGE_SIZE (default 1000)")] = 100,
           ) -> int:
    largest: int = request.app.state.api_settings.max_page_size
    if limit > largest and "limit" in request.query_params:  # as FastAPI: defaults pass
        raise RequestValidationError([{
            "type": "less_than_equal", "loc": ("query", "limit"),
            "msg": f"Input should be less than or equal to {largest}", "input": str(limit),
            "ctx": {"le": largest}}])
    return limit


PeriodRange = Annotated[Filters, Depends(_period_range)]
WorkerFilters = Annotated[Filters, Depends(_worker_filters)]
Limit = Annotated[int, Depends(_limit)]
Cursor = Annotated[str | None, Query(description="next_cursor of the previous page")]
