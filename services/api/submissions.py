"""Submissions to the registration gateway in PostgreSQL (registry.submissions and
registry.submission_rows): recorded before anything is published, published
row by row, and answered from the record, so that a retry publishes nothing twice."""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from collections.abc import Sequence
from typing import Any

import asyncpg

from schemas.events import parse_registration
from services.api.auth import Principal
from services.api.intake import Row, Source
from services.api.producer import Gateway
from services.domain.nik import nik_of

log = logging.getLogger(__name__)


def request_hash(source: Source, programme: str | None, body: bytes) -> str:
    digest = hashlib.sha256(f"{source}\n{programme or ''}\n".encode())
    digest.update(body)
    return digest.hexdigest()


async def find(pool: asyncpg.Pool, opd_code: str, key: str) -> asyncpg.Record | None:
    return await pool.fetchrow(
        "SELECT submission_id, request_hash FROM registry.submissions "
        "WHERE opd_code = $1 AND idempotency_key = $2", opd_code, key)


async def record(pool: asyncpg.Pool, principal: Principal, key: str | None, digest: str,
                 source: Source, programme: str | None, rows: Sequence[Row]) -> uuid.UUID:
    """Record a submission and its rows; the id of the one recorded before under the same
    Idempotency-Key when another request got there first."""
    submission_id = uuid.uuid4()
    async with pool.acquire() as connection, connection.transaction():
        inserted = await connection.fetchval(
            """INSERT INTO registry.submissions (submission_id, opd_code, token_name,
                   idempotency_key, request_hash, source, programme, row_count)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
               ON CONFLICT (opd_code, idempotency_key) DO NOTHING
               RETURNING submission_id""",
            submission_id, principal.opd_code, principal.name, key, digest, source, programme,
            len(rows))
        if inserted is None:
            existing = await connection.fetchval(
                "SELECT submission_id FROM registry.submissions "
                "WHERE opd_code = $1 AND idempotency_key = $2", principal.opd_code, key)
            assert existing is not None
            return uuid.UUID(str(existing))
        await connection.copy_records_to_table(
            "submission_rows", schema_name="registry",
            columns=["submission_id", "row_number", "event_id", "event_type", "nik",
                     "programme", "errors", "event"],
            records=[(submission_id, r.number, r.event.event_id if r.event else None,
                      r.event.event_type if r.event else None, r.nik, r.programme,
                      json.dumps([e.model_dump() for e in r.errors]),
                      r.event.model_dump_json() if r.event else None) for r in rows])
    return submission_id


async def publish_pending(pool: asyncpg.Pool, gateway: Gateway, submission_id: uuid.UUID,
                          opd_code: str) -> tuple[int, int]:
    """Publish the rows of a submission not published yet and wait for the broker; returns
    (sent now, already published by an earlier submission of the same event id). One OPD's
    submissions publish one after the other (an advisory lock), so an event id is sent once
    even when two requests carry it at the same time. KafkaError leaves the rows unsent."""
    async with pool.acquire() as connection, connection.transaction():
        await connection.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
                                 f"gateway:{opd_code}")
        rows = await connection.fetch(
            """SELECT r.row_number, r.event,
                      EXISTS (SELECT 1 FROM registry.submission_rows o
                               WHERE o.event_id = r.event_id AND o.published_at IS NOT NULL)
                          AS already
                 FROM registry.submission_rows r
                WHERE r.submission_id = $1 AND r.event_id IS NOT NULL
                  AND r.published_at IS NULL
                ORDER BY r.row_number""", submission_id)
        fresh = [r for r in rows if not r["already"]]
        if fresh:
            await gateway.publish([_message(r["event"]) for r in fresh])
        if rows:
            await connection.execute(
                "UPDATE registry.submission_rows SET published_at = now() "
                "WHERE submission_id = $1 AND row_number = ANY($2::integer[])",
                submission_id, [r["row_number"] for r in rows])
    return len(fresh), len(rows) - len(fresh)


def _message(event_json: str) -> tuple[bytes, bytes]:
    """Key (the NIK) and value of a recorded event, sent exactly as recorded."""
    return nik_of(parse_registration(event_json)).encode(), event_json.encode()


async def receipt_rows(pool: asyncpg.Pool, submission_id: uuid.UUID) -> list[dict[str, Any]]:
    """The recorded rows: number, event id, NIK and errors, in row order."""
    rows = await pool.fetch(
        """SELECT row_number, event_id, event_type, nik, errors, published_at
             FROM registry.submission_rows WHERE submission_id = $1 ORDER BY row_number""",
        submission_id)
    return [{**dict(r), "errors": json.loads(r["errors"])} for r in rows]
