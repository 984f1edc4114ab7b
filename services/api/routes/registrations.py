"""The registration gateway for OPDs: POST /v1/registrations, and what became of every row
(GET /v1/submissions/{id}) and of every event, however it was published (GET /v1/events/{id})."""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Annotated, Any

from aiokafka.errors import KafkaError
from fastapi import APIRouter, Header, HTTPException, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, TypeAdapter

from schemas.events import RegistrationEvent
from services.api import intake, outcomes, submissions
from services.api.auth import Principal
from services.api.deps import Agency, AgencyOrPersonal, Pool
from services.api.intake import IntakeError, Limits, Row, Source
from services.api.outcomes import OpdMessage
from services.api.params import Code
from services.api.producer import Gateway
from services.api.reading import record_read
from services.domain.pesan import with_pesan
from services.privacy.access_log import NikTally
from services.runtime import metrics

log = logging.getLogger(__name__)

router = APIRouter(tags=["registrations"])

MEDIA_TYPES: dict[str, Source] = {
    "application/json": "json",
    "text/csv": "csv",
    "application/csv": "csv",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": "xlsx",
}


class RowError(BaseModel):
    row: int
    nik: str | None
    errors: list[OpdMessage]


class SentRow(BaseModel):
    row: int
    event_id: uuid.UUID
    nik: str | None


class Receipt(BaseModel):
    submission_id: uuid.UUID | None = Field(description="null for a dry run")
    dry_run: bool
    rows: int
    valid: int = Field(description="rows that passed the checks and are (or would be) sent")
    published: int = Field(description="events this request sent to Kafka")
    already_published: int = Field(
        description="valid rows whose event an earlier request sent already (not sent again)")
    errors: list[RowError] = Field(description="rows refused by the checks, never sent")
    events: list[SentRow]


class Refusal(BaseModel):
    code: str
    message: str
    rows: list[dict[str, Any]] = Field(default_factory=list)


_REQUEST_BODY = {"content": {
    "application/json": {"schema": {"type": "array", "items": {
        "$ref": "#/components/schemas/RegistrationEvent"}}},
    "text/csv": {"schema": {"type": "string"}},
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": {
        "schema": {"type": "string", "format": "binary"}},
}, "required": True, "description": "a JSON array of v1 events, or a CSV/XLSX file in the "
                                    "template of deploy/templates"}


def event_schemas() -> dict[str, Any]:
    """JSON Schemas of the v1 events for /docs (components/schemas): RegistrationEvent and
    the models it refers to."""
    schema = TypeAdapter(RegistrationEvent).json_schema(
        ref_template="#/components/schemas/{model}")
    found: dict[str, Any] = schema.pop("$defs", {})
    found["RegistrationEvent"] = schema
    return found


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length", "")
    too_large = IntakeError(413, "body_too_large",
                            f"the body is larger than {limit} bytes "
                            "(IURAN_API_MAX_UPLOAD_BYTES): split the submission")
    if declared.isdigit() and int(declared) > limit:
        raise too_large
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


def _source(request: Request) -> Source:
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media not in MEDIA_TYPES:
        raise IntakeError(415, "unsupported_media_type",
                          f"Content-Type {media or '(none)'} is not taken; send one of "
                          + ", ".join(MEDIA_TYPES))
    return MEDIA_TYPES[media]


def _refused(exc: IntakeError) -> JSONResponse:
    return JSONResponse(status_code=exc.status, content={"detail": exc.detail()})


def _receipt(submission_id: uuid.UUID | None, dry_run: bool, rows: list[dict[str, Any]],
             published: int = 0, already: int = 0) -> dict[str, Any]:
    return {
        "submission_id": submission_id, "dry_run": dry_run, "rows": len(rows),
        "valid": sum(1 for r in rows if r["event_id"] is not None),
        "published": published, "already_published": already,
        "errors": [{"row": r["row_number"], "nik": r["nik"], "errors": with_pesan(r["errors"])}
                   for r in rows if r["event_id"] is None],
        "events": [{"row": r["row_number"], "event_id": r["event_id"], "nik": r["nik"]}
                   for r in rows if r["event_id"] is not None],
    }


def _as_recorded(rows: list[Row]) -> list[dict[str, Any]]:
    return [{"row_number": r.number, "event_id": r.event.event_id if r.event else None,
             "nik": r.nik, "errors": [e.model_dump() for e in r.errors]} for r in rows]


async def _publish(pool: Pool, gateway: Gateway, submission_id: uuid.UUID,
                   principal: Principal) -> tuple[int, int]:
    assert principal.opd_code is not None
    try:
        return await submissions.publish_pending(pool, gateway, submission_id,
                                                 principal.opd_code)
    except KafkaError as exc:
        log.warning("submission %s not published: Kafka failed (%s)", submission_id,
                    type(exc).__name__)
        raise HTTPException(503, detail={
            "code": "broker_unavailable", "submission_id": str(submission_id),
            "message": "Kafka did not acknowledge the events: send the same request again "
                       "with the same Idempotency-Key"}) from None


@router.post(
    "/v1/registrations", response_model=Receipt, status_code=201,
    openapi_extra={"requestBody": _REQUEST_BODY},
    responses={200: {"model": Receipt, "description": "the same request again: its receipt"},
               403: {"model": Refusal}, 413: {"model": Refusal}, 415: {"model": Refusal},
               422: {"description": "a row limit, an unreadable file, or an Idempotency-Key "
                                    "used before for another request"}})
async def register(
    request: Request, principal: Agency, pool: Pool,
    programme: Annotated[Code, Query(description="programme of an upload (default: the "
                                                 "token's only one)")] = None,
    dry_run: Annotated[bool, Query(description="check the rows only: nothing is recorded "
                                               "or sent")] = False,
    idempotency_key: Annotated[str | None, Header(min_length=1, max_length=200)] = None,
) -> JSONResponse:
    """Register or deregister workers: a JSON array of v1 events, or a CSV/XLSX upload in the
    template. Every row is checked with the rules `iuran publish` uses; the valid ones are
    published keyed by NIK once the submission is recorded, and the answer waits for the
    broker. The same request again (same Idempotency-Key) publishes nothing twice."""
    settings = request.app.state.api_settings
    gateway: Gateway | None = request.app.state.gateway
    try:
        source = _source(request)
        body = await _read_body(request, settings.max_upload_bytes)
        wanted = None if source == "json" else intake.choose_programme(
            principal, request.app.state.programmes, programme).id
        digest = submissions.request_hash(source, wanted, body)
        if not dry_run:
            if gateway is None:
                raise HTTPException(503, detail="the registration gateway has no Kafka")
            gateway.require()
            if idempotency_key is not None:
                earlier = await submissions.find(pool, principal.opd_code or "", idempotency_key)
                if earlier is not None:
                    return await _replay(pool, gateway, principal, earlier, digest)
        # openpyxl and the row checks are CPU work: off the event loop
        rows = await asyncio.to_thread(_rows, request, principal, source, body, wanted,
                                       idempotency_key)
    except IntakeError as exc:
        log.info("submission refused: opd=%s code=%s", principal.opd_code, exc.code)
        return _refused(exc)
    if dry_run:
        return JSONResponse(_jsonable(_receipt(None, True, _as_recorded(rows))), 200)
    assert gateway is not None
    submission_id = await submissions.record(pool, principal, idempotency_key, digest, source,
                                             wanted, rows)
    sent, already = await _publish(pool, gateway, submission_id, principal)
    recorded = await submissions.receipt_rows(pool, submission_id)
    invalid = sum(1 for r in recorded if r["event_id"] is None)
    for result, count in (("sent", sent), ("already_sent", already), ("invalid", invalid)):
        metrics.GATEWAY_ROWS.labels(principal.opd_code, result).inc(count)
    log.info("submission %s: opd=%s rows=%d sent=%d already=%d invalid=%d", submission_id,
             principal.opd_code, len(recorded), sent, already, invalid)
    return JSONResponse(_jsonable(_receipt(submission_id, False, recorded, sent, already)), 201)


def _rows(request: Request, principal: Principal, source: Source, body: bytes,
          programme: str | None, key: str | None) -> list[Row]:
    now = request.app.state.clock()
    settings = request.app.state.api_settings
    limits = Limits(settings.max_upload_rows, now, key,
                    max_unpacked_bytes=20 * settings.max_upload_bytes)
    programmes = request.app.state.programmes
    if source == "json":
        return intake.read_events(body, principal, programmes, limits)
    assert programme is not None
    return intake.read_upload(body, source, principal, programmes[programme], limits)


async def _replay(pool: Pool, gateway: Gateway, principal: Principal, earlier: Any,
                  digest: str) -> JSONResponse:
    if earlier["request_hash"] != digest:
        raise IntakeError(422, "idempotency_key_reused",
                          "this Idempotency-Key was used for another request; use a new key "
                          "for a new submission")
    submission_id = uuid.UUID(str(earlier["submission_id"]))
    sent, already = await _publish(pool, gateway, submission_id, principal)
    recorded = await submissions.receipt_rows(pool, submission_id)
    return JSONResponse(_jsonable(_receipt(submission_id, False, recorded, sent, already)), 200)


def _jsonable(receipt: dict[str, Any]) -> Any:
    return Receipt.model_validate(receipt).model_dump(mode="json")


@router.get("/v1/submissions/{submission_id}", response_model=outcomes.SubmissionOutcomes,
            responses={404: {"description": "no such submission of this OPD"}})
async def submission(request: Request, submission_id: uuid.UUID,
                     principal: AgencyOrPersonal, pool: Pool) -> outcomes.SubmissionOutcomes:
    """Every row of a submission with its current outcome: invalid (the gateway's checks),
    pending, accepted or rejected (the validator), booked, held, cancelled or refused (the
    ledger). Another OPD's submission: 404."""
    found = await outcomes.submission(pool, submission_id, principal)
    if found is None:
        raise HTTPException(404, detail="no such submission")
    tally = NikTally()
    for row in found.rows:
        tally.add(row.nik)
    await record_read(pool, request, principal, {"submission_id": submission_id}, tally)
    return found


@router.get("/v1/events/{event_id}", response_model=outcomes.EventOutcome,
            responses={404: {"description": "no such event of this OPD (or not decided yet)"}})
async def event(request: Request, event_id: uuid.UUID, principal: AgencyOrPersonal,
                pool: Pool) -> outcomes.EventOutcome:
    """The outcome of one registration event by its event_id, for OPDs that publish to
    Kafka themselves as for those that use the gateway. Another OPD's event: 404."""
    found = await outcomes.event(pool, event_id, principal)
    if found is None:
        raise HTTPException(404, detail="no such event for this OPD (or not decided yet)")
    tally = NikTally()
    tally.add(found.nik)
    await record_read(pool, request, principal, {"event_id": event_id}, tally)
    return found
