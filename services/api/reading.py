"""Reading the finance views for a caller: keyset pages, bounded listings, NIK masking and
the audit line of every personal-data read (the token's name and role, never the data)."""

from __future__ import annotations

import logging
from datetime import date, datetime
from typing import Any

import asyncpg
from fastapi import HTTPException

from services.api.auth import Principal
from services.api.deps import masker, open_cursor
from services.ledger.views import View, select
from services.privacy.keys import PrivacyKeys

# Log pipelines select the line of every personal-data read by this logger name.
audit_log = logging.getLogger("services.api.app")


def _key_text(value: object) -> str:
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)


def audit(principal: Principal, endpoint: str, spec: View, rows: int) -> None:
    if spec.personal:
        audit_log.info("personal data read: token=%s role=%s endpoint=%s view=%s rows=%d "
                       "masked=%s", principal.name, principal.role, endpoint, spec.name, rows,
                       not principal.personal_data)


async def page(pool: asyncpg.Pool, keys: PrivacyKeys, spec: View, principal: Principal,
               endpoint: str, filters: dict[str, Any], limit: int,
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
    mask = masker(principal, keys)
    if mask is not None:
        rows = [mask(r) for r in rows]
    audit(principal, endpoint, spec, len(rows))
    return {"items": rows, "next_cursor": next_cursor}


async def listing(pool: asyncpg.Pool, spec: View, filters: dict[str, Any],
                  limit: int) -> dict[str, Any]:
    """Up to ``limit`` rows of ``spec``: {"items"}."""
    sql, args = select(spec, filters, limit=limit)
    return {"items": [dict(r) for r in await pool.fetch(sql, *args)]}
