"""BPJS's verdicts in the ledger (iuran.bpjs.verifications.v1): each verdict is kept once
(verification_id), the latest by ``verified_at`` is the worker's standing, and a rejection
that is the latest verdict cancels the worker's months of the programme not billed yet
through the booking (a cancelled schedule: the budget is freed, held workers are released
in order). A verified worker's KPJ and first covered month are what the verdict says. Each
worker's new standing verdict goes to the ledger's outbox in the same transaction
(iuran.ledger.v1 ``bpjs_verdicts``), for the coverage figures.

A record that is no verdict (``malformed_verification``) or that reuses a verification id
with other content (``verification_id_reused``) is kept as a dead letter of the topic."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
from pydantic import ValidationError

from schemas.events import (
    BpjsVerification,
    Category,
    Components,
    ContributionDue,
    ContributionSchedule,
)
from services.ledger import book, outbox
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


_EXISTING = """
SELECT verification_id, fingerprint FROM ledger.bpjs_verifications
 WHERE verification_id = ANY($1::uuid[])"""
_LATEST = """
SELECT DISTINCT ON (v.programme, v.nik) v.programme, v.nik, v.verified_at
  FROM ledger.bpjs_verifications v
  JOIN unnest($1::text[], $2::text[]) AS w (programme, nik)
    ON v.programme = w.programme AND v.nik = w.nik
 ORDER BY v.programme, v.nik, v.verified_at DESC, v.seq DESC"""
# The workers' months of the programme that are not billed: booked or held.
_UNBILLED = """
SELECT c.programme, c.nik, c.contribution_id, c.period, c.due_date, c.amount_idr, c.jkk_idr,
       c.jkm_idr, c.generation, c.opd_code, c.category, c.kecamatan, c.funding_source
  FROM finance.contributions c
  JOIN unnest($1::text[], $2::text[]) AS w (programme, nik)
    ON c.programme = w.programme AND c.nik = w.nik
 WHERE c.status IN ('booked', 'held')
 ORDER BY c.programme, c.nik, c.period, c.generation"""
_ALLOCATIONS_LOCKED = """
SELECT 1 FROM ledger.budget_allocations WHERE programme = ANY($1::text[])
 ORDER BY programme, funding_source FOR UPDATE"""
_STOPPED = """
INSERT INTO ledger.bpjs_cancelled_months (contribution_id, verification_id, programme, nik,
                                          period)
SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[])
ON CONFLICT (contribution_id) DO NOTHING"""
_INSERT = """
INSERT INTO ledger.bpjs_verifications (verification_id, programme, nik, status, kpj,
       effective_period, reason_code, reason, verified_at, fingerprint, cancelled_months)
SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
                     $7::text[], $8::text[], $9::timestamptz[], $10::text[], $11::integer[])"""


def cancelled_schedules(v: BpjsVerification, months: Sequence[Mapping[str, Any]]
                        ) -> list[ContributionSchedule]:
    """The cancelled schedules that stop ``months`` for a rejection (one per enrolment's
    OPD, category, kecamatan and funding source), with ids derived from the verdict."""
    groups: dict[tuple[str, str, str, str], list[Mapping[str, Any]]] = {}
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


@dataclass
class BatchOutcome:
    outcomes: list[str]  # per verdict, in order: recorded, superseded, replayed or reused
    result: book.BatchResult | None = None
    cancelled_months: int = 0


async def apply_verification(connection: asyncpg.Connection,
                             v: BpjsVerification) -> VerdictOutcome:
    """One verdict (see :func:`apply_verifications`)."""
    batch = await apply_verifications(connection, [v])
    return VerdictOutcome(batch.outcomes[0], batch.cancelled_months, batch.result)


async def apply_verifications(connection: asyncpg.Connection,
                              verdicts: Sequence[BpjsVerification]) -> BatchOutcome:
    """Record a batch of verdicts and, for each worker whose standing verdict is now a
    rejection, cancel its unbilled months, in one transaction. A verdict older than the
    worker's latest is kept as history (``superseded``). A verification id received before
    (or earlier in the batch) with other content changes nothing (``verification_id_reused``:
    the first is kept); with the same content, nothing either (``replayed``)."""
    marks = [fingerprint(v) for v in verdicts]
    outcomes: list[str] = [""] * len(verdicts)
    async with connection.transaction():
        rejecting = sorted({v.programme for v in verdicts if v.status == "rejected"})
        if rejecting:
            await connection.execute(BILL_LINES_SHARED)  # no bill is issued meanwhile
            # The programmes' allocations, locked as a booking locks them: a booking of
            # these workers in flight commits first (its months are then read below as
            # unbilled), and one that starts now waits, then reads the rejection.
            await connection.execute(_ALLOCATIONS_LOCKED, rejecting)
        # The verdicts of one worker are decided one after the other (in NIK order).
        for nik in sorted({v.nik for v in verdicts}):
            await connection.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
                                     f"bpjs-verdict:{nik}")
        known = {r["verification_id"]: r["fingerprint"] for r in await connection.fetch(
            _EXISTING, [v.verification_id for v in verdicts])}
        new: list[int] = []
        for i, (v, mark) in enumerate(zip(verdicts, marks, strict=True)):
            seen = known.get(v.verification_id)
            if seen is not None:
                outcomes[i] = REPLAYED if seen == mark else VERIFICATION_ID_REUSED
                continue
            known[v.verification_id] = mark
            new.append(i)
        workers = sorted({(verdicts[i].programme, verdicts[i].nik) for i in new})
        latest: dict[tuple[str, str], datetime] = {
            (r["programme"], r["nik"]): r["verified_at"] for r in await connection.fetch(
                _LATEST, [w[0] for w in workers], [w[1] for w in workers])}
        standing: dict[tuple[str, str], int] = {}  # worker -> its new standing verdict
        for i in sorted(new, key=lambda i: verdicts[i].verified_at):  # stable: arrival order
            v = verdicts[i]
            key = (v.programme, v.nik)
            if key not in latest or v.verified_at >= latest[key]:
                latest[key] = v.verified_at
                standing[key] = i
        for i in new:
            key = (verdicts[i].programme, verdicts[i].nik)
            outcomes[i] = RECORDED if standing.get(key) == i else SUPERSEDED
        rejected = sorted(k for k, i in standing.items() if verdicts[i].status == "rejected")
        cancelled: dict[int, int] = {}
        result = None
        if rejected:
            months: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
            for r in await connection.fetch(_UNBILLED, [k[0] for k in rejected],
                                            [k[1] for k in rejected]):
                months.setdefault((r["programme"], r["nik"]), []).append(r)
            schedules = []
            stopped: list[tuple[object, ...]] = []
            for key, unbilled in months.items():
                v = verdicts[standing[key]]
                schedules += cancelled_schedules(v, unbilled)
                cancelled[standing[key]] = len(unbilled)
                stopped += [(m["contribution_id"], v.verification_id, v.programme, v.nik,
                             m["period"]) for m in unbilled]
            if schedules:
                result = await book.book_schedules(connection, schedules)
                await connection.execute(_STOPPED, *(list(c) for c in zip(*stopped,
                                                                            strict=True)))
        if new:
            taken = [(verdicts[i], marks[i], cancelled.get(i, 0)) for i in new]
            await connection.execute(_INSERT, *(list(column) for column in zip(*[
                (v.verification_id, v.programme, v.nik, v.status, v.kpj, v.effective_period,
                 v.reason_code, v.reason, v.verified_at, mark, count)
                for v, mark, count in taken], strict=True)))
        await outbox.record_verdicts(connection, (
            (key[0], key[1], verdicts[i].status, verdicts[i].verified_at)
            for key, i in sorted(standing.items())))
    return BatchOutcome(outcomes, result, sum(cancelled.values()))


_STANDING = """
SELECT programme, nik, status, verified_at FROM finance.bpjs_members
 WHERE $1::text IS NULL OR programme = $1 ORDER BY programme, nik"""


async def announce_standing(connection: asyncpg.Connection,
                            programme: str | None = None) -> int:
    """Write every worker's standing verdict (of ``programme``, or of all) to the outbox
    again, in one transaction: coverage counts verdicts recorded before the outbox carried
    them. The projector keeps the latest ``verified_at``, so announcing twice changes
    nothing. Returns the verdicts announced."""
    async with connection.transaction():
        rows = await connection.fetch(_STANDING, programme)
        await outbox.record_verdicts(connection, (
            (r["programme"], r["nik"], r["status"], r["verified_at"]) for r in rows))
    return len(rows)
