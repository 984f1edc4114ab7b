"""/export/{view}: a finance view as CSV or XLSX, streamed, with the filters of the lists."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Literal

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import StreamingResponse

from services.api.deps import Keys, Personal, Pool, masker
from services.api.params import Code, PeriodRange, WorkerFilters
from services.api.reading import record_read
from services.ledger import export
from services.ledger.views import VIEWS, select

router = APIRouter(tags=["finance"])

Exportable = Literal["contributions", "monthly_bill", "bills", "budget_utilisation",
                     "budget_changes", "outstanding", "discrepancies", "arrears",
                     "worker_history"]


@router.get("/export/{view}", response_class=StreamingResponse, responses={
    200: {"content": {"text/csv": {}, export.MEDIA_TYPES["xlsx"]: {}},
          "description": "the rows of the view, streamed"}})
async def export_view(
    request: Request, principal: Personal, pool: Pool, keys: Keys, view: Exportable,
    periods: PeriodRange, workers: WorkerFilters,
    format: Literal["csv", "xlsx"] = "csv",  # noqa: A002 - the public parameter name
    programme: Code = None, status: Code = None,
) -> StreamingResponse:
    """CSV or XLSX of a finance view with the same filters as the lists, streamed."""
    spec = VIEWS[view]
    wanted = {"programme": programme, **periods, **workers, "status": status}
    unsupported = sorted(k for k, v in wanted.items() if v is not None
                         and k not in spec.filters)
    if unsupported:
        raise HTTPException(422, detail=f"finance.{view} cannot be filtered by "
                                        f"{', '.join(unsupported)}")
    if status is not None and status not in spec.statuses:
        raise HTTPException(422, detail=f"status of finance.{view} is one of "
                                        f"{', '.join(sorted(spec.statuses))}")
    sql, args = select(spec, wanted)
    counter = export.Counter()
    mask = masker(principal, keys)

    async def body() -> AsyncIterator[bytes]:
        try:
            async with pool.acquire() as connection:
                chunks = export.counted(export.fetch_chunks(connection, sql, args), counter)
                if format == "csv":
                    stream = export.csv_stream(chunks, spec.columns, mask)
                else:
                    stream = export.xlsx_stream(chunks, spec.columns, view, mask)
                async for piece in stream:
                    yield piece
        finally:
            if spec.personal:  # also when the reader went away part way
                await record_read(pool, request, principal, {"view": view, **wanted},
                                  counter.niks, channel="export", view=spec.name,
                                  rows=counter.rows)

    filename = f"iuran-{view}.{format}"
    return StreamingResponse(body(), media_type=export.MEDIA_TYPES[format],
                             headers={"Content-Disposition": f'attachment; filename="{filename}"'})
