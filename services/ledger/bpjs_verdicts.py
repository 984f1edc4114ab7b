"""BPJS's verdicts in the ledger (iuran.bpjs.verifications.v1): each verdict is kept once
(verification_id), the latest by ``verified_at`` is the worker's standing, and a rejection
that is the latest verdict cancels the worker's months of the programme not billed yet
through the booking (a cancelled schedule: the budget is freed, held workers are released
in order). A verified worker's KPJ and first covered month are what the verdict says.

A record that is no verdict (``malformed_verification``) or that reuses a verification id
with other content (``verification_id_reused``) is kept as a dead letter of the topic."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass

import asyncpg
from pydantic import ValidationError

from schemas.events import (
    BpjsVerification,
    Category,
    Components,
    ContributionDue,
    ContributionSchedule,
)
from services.ledger import book
from services.ledger.bills import BILL_LINES_SHARED

MALFORMED_VERIFICATION = "malformed_verification"
VERIFICATION_ID_REUSED = "verification_id_reused"
RECORDED = "recorded"
SUPERSEDED = "superseded"  # kept in the history; a later verdict stands
REPLAYED = "replayed"

_NAMESPACE = uuid.UUID("0b6f1e0a-94a4-5c36-8f3a-2d7f6a1c9b55")


class UntakeableVerdict(Exception):  # noqa: N818 - a verdict on a record, not a failure
    """A verification record the ledger cannot take; ``reason`` is a stable code."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class VerdictOutcome:
    outcome: str
    cancelled_months: int = 0
    result: book.BatchResult | None = None


def take_verification(value: bytes | None) -> BpjsVerification:
    try:
        return BpjsVerification.model_validate_json(value or b"")
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(record)"
        raise UntakeableVerdict(
            MALFORMED_VERIFICATION, f"BPJS verification does not match the v1 contract: "
                                    f"{where}: {first['type']} ({first['msg']})") from None


def fingerprint(v: BpjsVerification) -> str:
    return str(uuid.uuid5(_NAMESPACE, v.model_dump_json(exclude={"verification_id"})))


_EXISTING = "SELECT fingerprint FROM ledger.bpjs_verifications WHERE verification_id = $1"
_LATEST = """
SELECT verified_at FROM ledger.bpjs_verifications WHERE programme = $1 AND nik = $2
 ORDER BY verified_at DESC, seq DESC LIMIT 1"""
# The worker's months of the programme that are not billed: booked or held.
_UNBILLED = """
SELECT contribution_id, period, due_date, amount_idr, jkk_idr, jkm_idr, generation,
       opd_code, category, kecamatan, funding_source
  FROM finance.contributions
 WHERE programme = $1 AND nik = $2 AND status IN ('booked', 'held')
 ORDER BY period, generation"""
_INSERT = """
INSERT INTO ledger.bpjs_verifications (verification_id, programme, nik, status, kpj,
       effective_period, reason_code, reason, verified_at, fingerprint, cancelled_months)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"""


def cancelled_schedules(v: BpjsVerification, months: list[Mapping[str, object]]
                        ) -> list[ContributionSchedule]:
    """The cancelled schedules that stop ``months`` for a rejection (one per enrolment's
    OPD, category, kecamatan and funding source), with ids derived from the verdict."""
    groups: dict[tuple[str, str, str, str], list[Mapping[str, object]]] = {}
    for m in months:
        key = (str(m["opd_code"]), str(m["category"]), str(m["kecamatan"]),
               str(m["funding_source"]))
        groups.setdefault(key, []).append(m)
    schedules = []
    for (opd, category, kecamatan, funding), rows in sorted(groups.items()):
        schedules.append(ContributionSchedule(
            schedule_id=uuid.uuid5(_NAMESPACE, f"{v.verification_id}|{opd}|{category}|"
                                               f"{kecamatan}|{funding}"),
            kind="cancelled", nik=v.nik, programme=v.programme, opd_code=opd,
            category=Category(category), kecamatan=kecamatan, funding_source=funding,
            registration_event_id=v.verification_id, occurred_at=v.verified_at,
            contributions=[ContributionDue(
                contribution_id=r["contribution_id"], period=r["period"],
                due_date=r["due_date"], amount_idr=r["amount_idr"],
                components=Components(jkk=r["jkk_idr"], jkm=r["jkm_idr"]),
                generation=r["generation"]) for r in rows]))
    return schedules


async def apply_verification(connection: asyncpg.Connection,
                             v: BpjsVerification) -> VerdictOutcome:
    """Record one verdict and, for a standing rejection, cancel the worker's unbilled
    months, in one transaction. A verification id received before with other content
    changes nothing (outcome ``verification_id_reused``: the first is kept)."""
    mark = fingerprint(v)
    async with connection.transaction():
        if v.status == "rejected":
            await connection.execute(BILL_LINES_SHARED)  # no bill is issued meanwhile
        # The verdicts of one worker are decided one after the other.
        await connection.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
                                 f"bpjs-verdict:{v.nik}")
        existing = await connection.fetchval(_EXISTING, v.verification_id)
        if existing is not None:
            return VerdictOutcome(REPLAYED if existing == mark else VERIFICATION_ID_REUSED)
        latest = await connection.fetchval(_LATEST, v.programme, v.nik)
        standing = latest is None or v.verified_at >= latest
        result = None
        cancelled = 0
        if v.status == "rejected" and standing:
            months = [dict(r) for r in await connection.fetch(_UNBILLED, v.programme, v.nik)]
            if months:
                result = await book.book_schedules(connection,
                                                   cancelled_schedules(v, months))
                cancelled = len(months)
        await connection.execute(
            _INSERT, v.verification_id, v.programme, v.nik, v.status, v.kpj,
            v.effective_period, v.reason_code, v.reason, v.verified_at, mark, cancelled)
    return VerdictOutcome(RECORDED if standing else SUPERSEDED, cancelled, result)
