"""Streaming exports of the finance views: CSV chunk by chunk, XLSX through openpyxl's
write-only mode (rows go to a temporary file, not memory). Rows are read with a server-side
cursor, so a year of a large city never sits in memory."""

from __future__ import annotations

import asyncio
import csv
import io
import os
import tempfile
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import asyncpg
from openpyxl import Workbook

from services.privacy.access_log import NikTally

CHUNK_ROWS = 2000
FILE_CHUNK_BYTES = 64 * 1024
FORMATS = ("csv", "xlsx")
MEDIA_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}

RowTransform = Callable[[dict[str, Any]], dict[str, Any]]


async def fetch_chunks(
    connection: asyncpg.Connection, sql: str, args: Sequence[object],
    chunk_rows: int = CHUNK_ROWS,
) -> AsyncIterator[list[asyncpg.Record]]:
    """The rows of a query in chunks, through a server-side cursor in a read-only
    transaction (closed when the consumer stops early)."""
    async with connection.transaction(readonly=True):
        chunk: list[asyncpg.Record] = []
        async for row in connection.cursor(sql, *args, prefetch=chunk_rows):
            chunk.append(row)
            if len(chunk) >= chunk_rows:
                yield chunk
                chunk = []
        if chunk:
            yield chunk


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)


def _cell(value: object) -> object:
    """A value openpyxl can write: UUIDs as text, aware datetimes as ISO 8601 text."""
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    return value


class Counter:
    """The rows an export read and the distinct NIKs among them (for the access log)."""

    def __init__(self) -> None:
        self.rows = 0
        self.niks = NikTally()


async def counted(chunks: AsyncIterator[list[asyncpg.Record]],
                  counter: Counter) -> AsyncIterator[list[asyncpg.Record]]:
    """The chunks unchanged, counted into ``counter`` as they pass (before any masking)."""
    async for chunk in chunks:
        counter.rows += len(chunk)
        counter.niks.add_rows(chunk)
        yield chunk


async def csv_stream(
    chunks: AsyncIterator[list[asyncpg.Record]], columns: Sequence[str],
    transform: RowTransform | None = None,
) -> AsyncIterator[bytes]:
    """CSV bytes (UTF-8, header first, RFC 4180 quoting), one piece per chunk of rows."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(columns)
    yield buffer.getvalue().encode()
    async for chunk in chunks:
        buffer.seek(0)
        buffer.truncate()
        for record in chunk:
            row = dict(record)
            if transform is not None:
                row = transform(row)
            writer.writerow([_text(row[c]) for c in columns])
        yield buffer.getvalue().encode()


async def write_xlsx(
    chunks: AsyncIterator[list[asyncpg.Record]], columns: Sequence[str], path: Path,
    sheet: str, transform: RowTransform | None = None,
) -> int:
    """Write an XLSX file in openpyxl's write-only mode; returns the number of rows."""
    workbook = Workbook(write_only=True)
    worksheet = workbook.create_sheet(title=sheet[:31])
    worksheet.append(list(columns))
    rows = 0

    def append(chunk: list[dict[str, Any]]) -> None:
        for row in chunk:
            worksheet.append([_cell(row[c]) for c in columns])

    async for chunk in chunks:
        dicts = [dict(r) for r in chunk]
        if transform is not None:
            dicts = [transform(r) for r in dicts]
        await asyncio.to_thread(append, dicts)
        rows += len(chunk)
    await asyncio.to_thread(workbook.save, str(path))
    return rows


async def xlsx_stream(
    chunks: AsyncIterator[list[asyncpg.Record]], columns: Sequence[str], sheet: str,
    transform: RowTransform | None = None,
) -> AsyncIterator[bytes]:
    """Build the XLSX in a temporary file, then stream it and delete it."""
    handle, name = tempfile.mkstemp(prefix="iuran-export-", suffix=".xlsx")
    os.close(handle)
    path = Path(name)
    try:
        await write_xlsx(chunks, columns, path, sheet, transform)
        stream = await asyncio.to_thread(path.open, "rb")
        try:
            while piece := await asyncio.to_thread(stream.read, FILE_CHUNK_BYTES):
                yield piece
        finally:
            stream.close()
    finally:
        await asyncio.to_thread(path.unlink, True)
