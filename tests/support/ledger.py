"""Helpers for tests against a real PostgreSQL: a uniquely named scratch database (created
and dropped), migrated, and contribution schedules built with the domain rules."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime

import asyncpg

from schemas.events import Category, ContributionSchedule
from services.domain.nik import REGIONS, encode_nik
from services.domain.programme import Billing, Programme
from services.domain.schedule import contributions_for, derived_id
from services.ledger import book
from services.ledger.budget import ensure_allocation
from services.ledger.migrate import migrate

DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
# The day the tests' bills of the Malang programme (fiscal year 2025) are issued: its year
# is open, whatever the machine's clock says.
IN_FISCAL_2025 = date(2025, 12, 31)


def admin_url() -> str:
    """IURAN_DATABASE_URL when set (its server hosts the scratch databases), else the
    system PostgreSQL on 127.0.0.1:5432."""
    return os.environ.get("IURAN_DATABASE_URL") or DEFAULT_ADMIN_URL


def _with_database(url: str, database: str) -> str:
    base, _, rest = url.partition("://")
    authority, _, path = rest.partition("/")
    query = path.partition("?")[2]
    return f"{base}://{authority}/{database}" + (f"?{query}" if query else "")


@contextlib.asynccontextmanager
async def scratch_database(
    server_url: str | None = None, prefix: str = "iuran_test", *, migrated: bool = True
) -> AsyncIterator[str]:
    """A fresh database on the server of ``server_url`` (any database there that the user
    may connect to; default :func:`admin_url`), migrated unless ``migrated`` is false;
    dropped afterwards."""
    server_url = server_url or admin_url()
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(server_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    url = _with_database(server_url, name)
    try:
        if migrated:
            connection = await asyncpg.connect(url)
            try:
                await migrate(connection)
            finally:
                await connection.close()
        yield url
    finally:
        admin = await asyncpg.connect(server_url)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


def worker_nik(serial: int, district: str = "01") -> str:
    """A valid Kota Malang NIK, distinct per serial (1..9999) and district."""
    return encode_nik("35", "73", district, date(1990, 1, 1 + serial % 28), "M", serial % 9999 + 1)


def schedule(
    programme: Programme, nik: str, periods: list[str], *, kind: str = "due",
    opd_code: str = "DISNAKER", category: Category = Category.OJEK_ONLINE,
    kecamatan: str = "Klojen", event: str | None = None,
    occurred_at: datetime | None = None, generation: int = 0,
) -> ContributionSchedule:
    """A contribution schedule as the validator emits it (ids derived the same way), every
    month of the given generation."""
    event_id = uuid.UUID(str(derived_id("test-event", event or f"{nik}:{kind}:{periods[0]}")))
    return ContributionSchedule(
        schedule_id=derived_id("schedule", kind, str(event_id)),
        kind=kind,  # type: ignore[arg-type]
        nik=nik,
        programme=programme.id,
        opd_code=opd_code,
        category=category,
        kecamatan=kecamatan,
        funding_source=programme.funding_source,
        registration_event_id=event_id,
        occurred_at=occurred_at or datetime(2025, 11, 25, 8, 0, tzinfo=UTC),
        contributions=contributions_for(programme, nik, periods,
                                        {period: generation for period in periods}),
    )


# Real kecamatan codes of East Java outside Kota and Kabupaten Malang (whose codes
# worker_nik and the demo use), e.g. ("09", "01"): NikSource's NIKs never collide with theirs.
_OTHER_PLACES = sorted((regency[2:], district) for regency, districts in REGIONS.items()
                       if regency.startswith("35") and regency not in {"3507", "3573"}
                       for district in districts)


class NikSource:
    """Distinct valid NIKs for one test session (so tests sharing a database never collide);
    ``region`` picks another kecamatan block, for modules sharing one database."""

    def __init__(self, region: int = 0) -> None:
        self._next = region * 9999

    def take(self, count: int = 1) -> list[str]:
        niks = []
        for _ in range(count):
            n = self._next
            self._next += 1
            regency, district = _OTHER_PLACES[(n // 9999) % len(_OTHER_PLACES)]
            niks.append(encode_nik("35", regency, district, date(1990, 1 + n % 12, 1 + n % 28),
                                   "M" if n % 2 else "F", n % 9999 + 1))
        return niks


def programme_copy(base: Programme, *, budget_idr: int, name: str | None = None,
                   billing: Billing | None = None) -> Programme:
    """A copy of a programme under a new id (its own allocation) with another budget (and
    another billing, e.g. ``Billing()`` for monthly bills)."""
    update: dict[str, object] = {
        "id": name or f"test-{uuid.uuid4().hex[:10]}", "budget_idr": budget_idr}
    if billing is not None:
        update["billing"] = billing
    return base.model_copy(update=update)


BOOKING_INSERT = """
INSERT INTO ledger.contributions (contribution_id, nik, period, programme, opd_code, category,
    kecamatan, funding_source, due_date, amount_idr, jkk_idr, jkm_idr, schedule_id,
    registration_event_id, generation, slot, posting_id)
VALUES ($1, $2, $3, $4, 'DISNAKER', 'ojek_online', 'Klojen', $5, '2026-01-15', 16800, 10000,
        6800, gen_random_uuid(), gen_random_uuid(), $6, $7, gen_random_uuid())
"""


async def insert_booking(connection: asyncpg.Connection, programme: Programme, nik: str,
                         period: str, *, slot: int, generation: int = 0) -> None:
    """A booked month written straight into the subledger, as a writer that bypasses the
    booking rules would: what the database itself refuses shows here."""
    await connection.execute(BOOKING_INSERT, uuid.uuid4(), nik, period, programme.id,
                             programme.funding_source, generation, slot)


async def book_months(database_url: str, programme: Programme, niks: list[str],
                      periods: list[str]) -> None:
    """Book ``periods`` of each worker of ``niks`` under ``programme`` straight through the
    ledger's booking (its allocation made first), on a connection of its own."""
    connection = await asyncpg.connect(database_url)
    try:
        await book.prepare(connection)
        await ensure_allocation(connection, programme)
        await book.book_schedules(connection, [schedule(programme, nik, periods)
                                               for nik in niks])
    finally:
        await connection.close()
