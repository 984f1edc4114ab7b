"""What became of each row of a submission and of each event: the gateway's own checks,
then the validator's decision and the ledger's months (finance.registration_outcomes)."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any, Literal

import asyncpg
from pydantic import BaseModel, Field

from schemas.events import RejectionError
from services.api.auth import Principal
from services.domain.pesan import with_pesan

Status = Literal["invalid", "not_sent", "pending", "accepted", "rejected", "booked", "held",
                 "cancelled", "refused"]
STATUS_HELP = (
    "invalid: refused by the gateway's checks (never sent); not_sent: the broker did not "
    "acknowledge it yet (send the same request again); pending: sent, not decided yet; "
    "accepted: decided, nothing booked yet; rejected: refused by the validator; booked, "
    "held (awaiting budget), cancelled, refused (paid by another payer, or too late to stop)"
)


class OpdMessage(RejectionError):
    pesan: str = Field(description="the message in Bahasa Indonesia, for the OPD (the code "
                                   "is stable; message stays in English)")


class Outcome(BaseModel):
    event_id: uuid.UUID | None
    event_type: Literal["registered", "deregistered", "corrected"] | None
    nik: str | None
    status: Status = Field(description=STATUS_HELP)
    final: bool = Field(description="nothing more happens to it by itself (held months may "
                                    "still be booked when the budget is raised)")
    errors: list[OpdMessage] = Field(description="why it was refused (stable codes)")
    warnings: list[OpdMessage] = Field(
        default_factory=list, description="checks that failed without refusing it")
    decided_at: datetime | None = None
    booked_periods: list[str] = Field(default_factory=list)
    held_periods: list[str] = Field(default_factory=list)
    cancelled_periods: list[str] = Field(default_factory=list)
    duplicate_periods: list[str] = Field(
        default_factory=list, description="months another payer pays already")
    refused_periods: list[str] = Field(default_factory=list)
    cancellation_refused_periods: list[str] = Field(
        default_factory=list, description="months a deregistration came too late for")
    bpjs_status: Literal["verified", "rejected"] | None = Field(
        default=None, description="BPJS's latest verdict on the worker in the programme; "
                                  "none: not answered yet (awaiting BPJS)")
    bpjs_kpj: str | None = Field(default=None, description="participant number (KPJ)")
    bpjs_reason_code: str | None = Field(default=None, description="BPJS's code, if rejected")
    bpjs_reason: str | None = Field(
        default=None, description="BPJS's reason in its own words (verbatim), if rejected: "
                                  "correct the worker's data and send the worker again")


class RowOutcome(Outcome):
    row: int = Field(description="the row number in the file, or the position in the array")


class SubmissionOutcomes(BaseModel):
    submission_id: uuid.UUID
    opd_code: str
    source: Literal["json", "csv", "xlsx"]
    programme: str | None
    submitted_at: datetime
    counts: dict[str, int] = Field(description="rows per status")
    rows: list[RowOutcome]


class EventOutcome(Outcome):
    opd_code: str
    programme: str | None


_OUTCOME_COLUMNS = """o.event_id AS decided_event, o.status, o.final, o.errors AS decision_errors,
       o.warnings, o.decided_at, o.booked_periods, o.held_periods, o.cancelled_periods,
       o.duplicate_periods, o.refused_periods, o.cancellation_refused_periods,
       b.status AS bpjs_status, b.kpj AS bpjs_kpj, b.reason_code AS bpjs_reason_code,
       b.reason AS bpjs_reason"""
# BPJS's standing on the worker of a decided event.
_BPJS_JOIN = """LEFT JOIN finance.bpjs_members b
       ON b.nik = o.nik AND b.programme = o.programme"""


def _outcome(row: asyncpg.Record) -> dict[str, Any]:
    if row["event_id"] is None:
        status, errors, final = "invalid", json.loads(row["errors"]), True
    elif row["published_at"] is None:
        status, errors, final = "not_sent", [], False
    elif row["decided_event"] is None:
        status, errors, final = "pending", [], False
    else:
        status, errors = row["status"], json.loads(row["decision_errors"])
        final = row["final"]
    found: dict[str, Any] = {
        "event_id": row["event_id"], "event_type": row["event_type"], "nik": row["nik"],
        "status": status, "final": final, "errors": with_pesan(errors),
    }
    if row["decided_event"] is not None:
        found["warnings"] = with_pesan(json.loads(row["warnings"]))
        found["decided_at"] = row["decided_at"]
        for name in ("booked_periods", "held_periods", "cancelled_periods",
                     "duplicate_periods", "refused_periods", "cancellation_refused_periods"):
            found[name] = sorted(row[name])
        for name in ("bpjs_status", "bpjs_kpj", "bpjs_reason_code", "bpjs_reason"):
            found[name] = row[name]
    return found


def _visible(principal: Principal, opd_code: str | None) -> bool:
    return principal.personal_data or (opd_code is not None and opd_code == principal.opd_code)


async def submission(pool: asyncpg.Pool, submission_id: uuid.UUID,
                     principal: Principal) -> SubmissionOutcomes | None:
    """Every row of a submission with its outcome; None when it is not the caller's."""
    head = await pool.fetchrow(
        "SELECT submission_id, opd_code, source, programme, submitted_at "
        "FROM registry.submissions WHERE submission_id = $1", submission_id)
    if head is None or not _visible(principal, head["opd_code"]):
        return None
    rows = await pool.fetch(
        f"""SELECT r.row_number, r.event_id, r.event_type, r.nik, r.errors, r.published_at,
                   {_OUTCOME_COLUMNS}
              FROM registry.submission_rows r
              LEFT JOIN finance.registration_outcomes o ON o.event_id = r.event_id
              {_BPJS_JOIN}
             WHERE r.submission_id = $1 ORDER BY r.row_number""", submission_id)
    items = [RowOutcome(row=r["row_number"], **_outcome(r)) for r in rows]
    counts: dict[str, int] = {}
    for item in items:
        counts[item.status] = counts.get(item.status, 0) + 1
    return SubmissionOutcomes(**dict(head), counts=counts, rows=items)


async def event(pool: asyncpg.Pool, event_id: uuid.UUID,
                principal: Principal) -> EventOutcome | None:
    """One event's outcome, whether it came through the gateway or straight from Kafka;
    None when the caller's OPD did not publish it (or nobody knows of it yet)."""
    decided = await pool.fetchrow(
        f"""SELECT o.event_id, o.event_type, o.nik, o.opd_code, o.programme,
                   '[]'::jsonb::text AS errors, now() AS published_at, {_OUTCOME_COLUMNS}
              FROM finance.registration_outcomes o {_BPJS_JOIN}
             WHERE o.event_id = $1""", event_id)
    if decided is not None:
        if not _visible(principal, decided["opd_code"]):
            return None
        return EventOutcome(opd_code=decided["opd_code"], programme=decided["programme"],
                            **_outcome(decided))
    sent = await pool.fetchrow(
        """SELECT r.event_id, r.event_type, r.nik, s.opd_code, r.programme, r.errors,
                  r.published_at, NULL::uuid AS decided_event
             FROM registry.submission_rows r JOIN registry.submissions s USING (submission_id)
            WHERE r.event_id = $1 AND ($2::text IS NULL OR s.opd_code = $2)
            ORDER BY r.published_at NULLS LAST LIMIT 1""",
        event_id, None if principal.personal_data else principal.opd_code)
    if sent is None or not _visible(principal, sent["opd_code"]):
        return None
    return EventOutcome(opd_code=sent["opd_code"], programme=sent["programme"],
                        **_outcome(sent))
