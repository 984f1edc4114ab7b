"""BPJS's bills in the ledger (iuran.bpjs.bills.v1): each bill is kept once with its lines
(bpjs_bill_id) and reconciled line by line by finance.bpjs_reconciliation, summed up in
finance.bpjs_bills. A record that is no bill (``malformed_bpjs_bill``) or that reuses a bill
id with other content (``bpjs_bill_id_reused``) is kept as a dead letter of the topic."""

from __future__ import annotations

import uuid
from collections import Counter
from dataclasses import dataclass, field

import asyncpg
from pydantic import ValidationError

from schemas.events import BpjsBill

MALFORMED_BPJS_BILL = "malformed_bpjs_bill"
BPJS_BILL_ID_REUSED = "bpjs_bill_id_reused"
RECORDED = "recorded"
REPLAYED = "replayed"

_NAMESPACE = uuid.UUID("3f9b1c72-5d0e-5a8b-b4e1-7c2a9d6e0f13")


class UntakeableBill(Exception):  # noqa: N818 - a verdict on a record, not a failure
    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class BillOutcome:
    outcome: str
    lines: Counter[str] = field(default_factory=Counter)  # reconciliation outcome -> lines


def take_bill(value: bytes | None) -> BpjsBill:
    try:
        return BpjsBill.model_validate_json(value or b"")
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(record)"
        raise UntakeableBill(
            MALFORMED_BPJS_BILL, f"BPJS bill does not match the v1 contract: "
                                 f"{where}: {first['type']} ({first['msg']})") from None


def fingerprint(bill: BpjsBill) -> str:
    return str(uuid.uuid5(_NAMESPACE, bill.model_dump_json()))


_INSERT_BILL = """
INSERT INTO ledger.bpjs_bills (bpjs_bill_id, programme, period, issued_at, lines, amount_idr,
                               fingerprint)
VALUES ($1, $2, $3, $4, $5, $6, $7)"""
_INSERT_LINES = """
INSERT INTO ledger.bpjs_bill_lines (bpjs_bill_id, line_number, nik, kpj, period, jkk_idr,
                                    jkm_idr, jht_idr, amount_idr)
SELECT $1, * FROM unnest($2::integer[], $3::text[], $4::text[], $5::text[], $6::bigint[],
                         $7::bigint[], $8::bigint[], $9::bigint[])"""
_OUTCOMES = """
SELECT outcome, count(*) AS lines FROM finance.bpjs_line_outcomes
 WHERE bpjs_bill_id = $1 GROUP BY outcome"""


async def record_bill(connection: asyncpg.Connection, bill: BpjsBill) -> BillOutcome:
    """Keep a BPJS bill once and say how its lines reconcile (months BPJS did not bill
    show in finance.bpjs_reconciliation, once every part of a bill is in); a bill id received before
    with other content changes nothing (outcome ``bpjs_bill_id_reused``)."""
    mark = fingerprint(bill)
    async with connection.transaction():
        await connection.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
                                 f"bpjs-bill:{bill.bpjs_bill_id}")
        existing = await connection.fetchval(
            "SELECT fingerprint FROM ledger.bpjs_bills WHERE bpjs_bill_id = $1",
            bill.bpjs_bill_id)
        if existing is not None:
            return BillOutcome(REPLAYED if existing == mark else BPJS_BILL_ID_REUSED)
        await connection.execute(
            _INSERT_BILL, bill.bpjs_bill_id, bill.programme, bill.period, bill.issued_at,
            len(bill.lines), sum(line.amount_idr for line in bill.lines), mark)
        lines = bill.lines
        await connection.execute(
            _INSERT_LINES, bill.bpjs_bill_id, list(range(1, len(lines) + 1)),
            [line.nik for line in lines], [line.kpj for line in lines],
            [line.period for line in lines], [line.jkk_idr for line in lines],
            [line.jkm_idr for line in lines], [line.jht_idr for line in lines],
            [line.amount_idr for line in lines])
        outcomes = Counter({r["outcome"]: r["lines"]
                            for r in await connection.fetch(_OUTCOMES, bill.bpjs_bill_id)})
    return BillOutcome(RECORDED, outcomes)
