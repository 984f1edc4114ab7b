"""For the data protection officer (role auditor): the record of every personal-data read
(GET /privacy/access-log) and everything iuran holds on one person
(GET /privacy/subjects/{nik}). Both reads are themselves recorded."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query, Request
from pydantic import BaseModel, Field

from services.api.deps import Auditor, Keys, Pool
from services.api.params import NikParam
from services.api.reading import record_read
from services.privacy import access_log
from services.privacy.access_log import NikTally
from services.privacy.pseudonyms import nik_pseudonym
from services.privacy.subject import subject_record

router = APIRouter(tags=["privacy"])


class AccessLogEntry(BaseModel):
    id: int
    at: datetime
    actor: str = Field(description="the token's name, or the OS user of a command")
    role: str
    channel: Literal["api", "cli", "export"]
    what: str = Field(description="the endpoint, export or command")
    filters: dict[str, Any]
    niks: list[str] = Field(description="the NIKs read; empty for a bulk read")
    nik_count: int = Field(description="how many distinct NIKs the read returned")
    masked: bool = Field(description="the reader saw NIKs masked")
    purpose: str


class AccessLog(BaseModel):
    items: list[AccessLogEntry]


@router.get("/privacy/access-log", response_model=AccessLog)
async def read_access_log(
    request: Request, principal: Auditor, pool: Pool, nik: NikParam = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
) -> dict[str, Any]:
    """Every read of personal data, newest first; with nik, the reads of that person (and
    the bulk reads that may have included them)."""
    items = await access_log.read(pool, nik=nik, limit=limit)
    tally = NikTally()
    tally.add(nik)
    await record_read(pool, request, principal, {"nik": nik, "limit": limit}, tally)
    return {"items": items}


class SubjectRecord(BaseModel):
    nik: str
    generated_at: datetime
    found: bool = Field(description="iuran has something on this person")
    submitted: list[dict[str, Any]] = Field(description="rows OPDs sent through the gateway")
    decisions: list[dict[str, Any]] = Field(description="registrations and their outcomes")
    corrections: list[dict[str, Any]] = Field(
        description="the enrolling OPD's corrections of name, birth date, phone or address, "
                    "oldest first (the earlier values stay in what was submitted)")
    enrolments: list[dict[str, Any]]
    months: list[dict[str, Any]] = Field(description="every month and its status")
    history: list[dict[str, Any]] = Field(description="what happened to each month")
    bills: list[dict[str, Any]] = Field(description="bills and payments carrying the months")
    credits: list[dict[str, Any]]
    refused_months: list[dict[str, Any]]
    dead_letters: list[dict[str, Any]] = Field(description="set-aside records carrying the NIK")
    access_log: list[dict[str, Any]] = Field(description="who read the person's data, when")
    erasure: list[dict[str, Any]] = Field(
        description="the retention purge's erasures, if any: of the personal fields, and of "
                    "the NIK itself once the financial archive ended")


@router.get("/privacy/subjects/{nik}", response_model=SubjectRecord)
async def read_subject(request: Request, principal: Auditor, pool: Pool, keys: Keys,
                       nik: str) -> dict[str, Any]:
    """Everything iuran holds on one person, in one document (the data subject's access)."""
    if len(nik) != 16 or not nik.isascii() or not nik.isdigit():
        raise HTTPException(422, detail="a NIK is exactly 16 digits")
    document = await subject_record(pool, nik, nik_pseudonym(keys, nik))
    tally = NikTally()
    tally.add(nik)
    await record_read(pool, request, principal, {"nik": nik}, tally)
    return document
