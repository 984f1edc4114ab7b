"""Reading the finance views for a caller: keyset pages, bounded listings, NIK masking and
the record of every personal-data read (a row of the access log, and a log line with the
token's name and role, never the data)."""

from __future__ import annotations

import logging
from datetime import date, datetime
from typing import Any

import asyncpg
from fastapi import HTTPException, Request

from services.api.auth import Principal
from services.api.deps import masker, open_cursor
from services.ledger.views import View, select
from services.privacy import access_log
from services.privacy.access_log import Access, Channel, NikTally
from services.privacy.keys import PrivacyKeys

# Log pipelines select the line of every personal-data read by this logger name.
audit_log = logging.getLogger("services.api.app")
PURPOSE_HEADER = "x-purpose"


def _key_text(value: object) -> str:
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)


def endpoint_of(request: Request) -> str:
    """The endpoint as declared (``/workers/{nik}/history``): a path never carries a NIK
    into the log."""
    route = request.scope.get("route")
    return str(getattr(route, "path", request.url.path))


async def record_read(pool: asyncpg.Pool, request: Request, principal: Principal,
                      filters: dict[str, Any], tally: NikTally, *,
                      channel: Channel = "api", view: str | None = None,
                      rows: int | None = None) -> None:
    """Record one response that carries personal data: the access log row (before the
    response goes out) and the log line."""
    endpoint = endpoint_of(request)
    masked = not principal.personal_data and principal.opd_code is None
    await access_log.record(pool, Access(
        actor=principal.name, role=principal.role, channel=channel, what=endpoint,
        purpose=request.headers.get(PURPOSE_HEADER, ""), filters=filters,
        masked=masked), tally)
    audit_log.info("personal data read: token=%s role=%s endpoint=%s view=%s rows=%d "
                   "masked=%s", principal.name, principal.role, endpoint,
                   view or endpoint, tally.count if rows is None else rows, masked)


async def audit(pool: asyncpg.Pool, request: Request, principal: Principal, spec: View,
                filters: dict[str, Any], rows: list[dict[str, Any]]) -> None:
    """Record a read of ``spec`` when the view carries personal data."""
    if spec.personal:
        tally = NikTally()
        tally.add_rows(rows)
        await record_read(pool, request, principal, filters, tally, view=spec.name,
                          rows=len(rows))


async def page(pool: asyncpg.Pool, keys: PrivacyKeys, request: Request, spec: View,
               principal: Principal, filters: dict[str, Any], limit: int,
               cursor: str | None) -> dict[str, Any]:
    """One page of ``spec`` after ``cursor``: {"items", "next_cursor"}. Cursors are sealed
    (they carry keyset values such as a NIK) and hold only for the list that issued them."""
    if filters.get("nik") is not None and not principal.personal_data:
        raise HTTPException(403, detail=f"role {principal.role} may not search by NIK")
    after = open_cursor(keys, cursor, spec.name)
    if after is not None and len(after) != len(spec.key):
        raise HTTPException(422, detail="cursor is not valid: pass next_cursor of the "
                                        "previous page of the same list unchanged")
    sql, args = select(spec, filters, after=after, limit=limit + 1)
    rows = [dict(r) for r in await pool.fetch(sql, *args)]
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = None
    if more:
        next_cursor = keys.seal([_key_text(rows[-1][c]) for c, _ in spec.key], spec.name)
    await audit(pool, request, principal, spec, filters, rows)
    mask = masker(principal, keys)
    if mask is not None:
        rows = [mask(r) for r in rows]
    return {"items": rows, "next_cursor": next_cursor}


async def listing(pool: asyncpg.Pool, spec: View, filters: dict[str, Any],
                  limit: int) -> dict[str, Any]:
    """Up to ``limit`` rows of ``spec``: {"items"}."""
    sql, args = select(spec, filters, limit=limit)
    return {"items": [dict(r) for r in await pool.fetch(sql, *args)]}
