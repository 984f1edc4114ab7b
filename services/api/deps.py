"""What the endpoints depend on: the connection pool (opened by the lifespan), the Kafka
producer of the registration gateway, and the caller's identity from the bearer token."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Annotated

import asyncpg
from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from services.api.auth import Principal, TokenBook
from services.api.producer import Gateway
from services.privacy.keys import CursorError, PrivacyKeys
from services.privacy.masking import RowMask, row_mask
from services.runtime.database import RETRYABLE
from services.runtime.retry import until_done

log = logging.getLogger(__name__)

ALL_ROLES = frozenset({"finance", "ops", "auditor"})
PERSONAL = frozenset({"finance", "auditor"})
AUDITOR = frozenset({"auditor"})  # the data protection officer
OPD = frozenset({"opd"})

_bearer = HTTPBearer(auto_error=False, description="A token from IURAN_API_TOKENS")


class Database:
    """The connection pool, created inside the running loop; retried while PostgreSQL is away."""

    def __init__(self, url: str, size: int) -> None:
        self.url = url
        self.size = size
        self.pool: asyncpg.Pool | None = None
        self.detail = "PostgreSQL not connected yet"

    async def connect_forever(self) -> None:
        def waiting(exc: BaseException, delay: float) -> None:
            self.detail = f"PostgreSQL unreachable ({type(exc).__name__})"
            log.warning("%s; retrying in %.1fs", self.detail, delay)

        async def create() -> asyncpg.Pool:
            return await asyncpg.create_pool(self.url, min_size=1, max_size=self.size)

        self.pool = await until_done(create, RETRYABLE, on_retry=waiting)
        self.detail = "ok"

    def require(self) -> asyncpg.Pool:
        if self.pool is None:
            raise HTTPException(503, detail=self.detail)
        return self.pool


def database(request: Request) -> Database:
    db: Database = request.app.state.database
    return db


def pool(request: Request) -> asyncpg.Pool:
    """The pool; 503 while PostgreSQL is not connected."""
    return database(request).require()


def gateway(request: Request) -> Gateway:
    """The registration gateway's producer; 503 while Kafka is not connected."""
    found: Gateway | None = request.app.state.gateway
    if found is None:
        raise HTTPException(503, detail="the registration gateway has no Kafka configured")
    found.require()
    return found


def privacy(request: Request) -> PrivacyKeys:
    keys: PrivacyKeys = request.app.state.privacy
    return keys


def max_page(request: Request) -> int:
    size: int = request.app.state.api_settings.max_page_size
    return size


def authorised(roles: frozenset[str]) -> Callable[..., Awaitable[Principal]]:
    """A dependency: the caller's Principal when its token has one of ``roles``."""

    async def dependency(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> Principal:
        if credentials is None or credentials.scheme.lower() != "bearer":
            raise HTTPException(401, detail="a bearer token is required",
                                headers={"WWW-Authenticate": "Bearer"})
        tokens: TokenBook = request.app.state.tokens
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


Anyone = Annotated[Principal, Depends(authorised(ALL_ROLES))]
Personal = Annotated[Principal, Depends(authorised(PERSONAL))]
Agency = Annotated[Principal, Depends(authorised(OPD))]
Auditor = Annotated[Principal, Depends(authorised(AUDITOR))]
AgencyOrPersonal = Annotated[Principal, Depends(authorised(OPD | PERSONAL))]
Pool = Annotated[asyncpg.Pool, Depends(pool)]
Keys = Annotated[PrivacyKeys, Depends(privacy)]


def masker(principal: Principal, keys: PrivacyKeys) -> RowMask | None:
    """Masks the NIK of a row and replaces ids derived from it by keyed pseudonyms, for
    roles without personal-data access (None: no masking). An OPD sees its own workers, the
    only rows it can read, unmasked."""
    if principal.personal_data or principal.opd_code is not None:
        return None
    return row_mask(keys)


def open_cursor(keys: PrivacyKeys, cursor: str | None, context: str) -> list[str] | None:
    """The keyset values of a list's cursor; 422 with a reason for one it did not issue."""
    if cursor is None:
        return None
    try:
        return keys.open(cursor, context)
    except CursorError:
        raise HTTPException(422, detail="cursor is not valid: pass next_cursor of the "
                                        "previous page of the same list unchanged") from None
