"""The page for OPD staff (/opd, in Bahasa Indonesia) and the upload templates it offers."""

from __future__ import annotations

from importlib import resources

from fastapi import APIRouter, HTTPException
from fastapi.responses import HTMLResponse, Response

from services.adapters.templates import CSV_NAME, XLSX_NAME, csv_template, xlsx_template

router = APIRouter(tags=["opd page"])

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def opd_page_html() -> str:
    text = (resources.files("services.api") / "static" / "opd.html").read_text("utf-8")
    if not text:
        raise HTTPException(500, detail="the OPD page is missing from the installation")
    return text


@router.get("/opd", response_class=HTMLResponse)
async def opd_page() -> HTMLResponse:
    """Sign in with the OPD token, upload the template, follow every row, list workers."""
    return HTMLResponse(opd_page_html())


@router.get("/opd/template.csv", response_class=Response,
            responses={200: {"content": {"text/csv": {}}}})
async def template_csv() -> Response:
    """The upload template (CSV), the same as deploy/templates."""
    return Response(csv_template(), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{CSV_NAME}"'})


@router.get("/opd/template.xlsx", response_class=Response,
            responses={200: {"content": {XLSX: {}}}})
async def template_xlsx() -> Response:
    """The upload template (XLSX), the same as deploy/templates."""
    return Response(xlsx_template(), media_type=XLSX,
                    headers={"Content-Disposition": f'attachment; filename="{XLSX_NAME}"'})
