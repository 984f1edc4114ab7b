"""Everything iuran holds on one person (UU 27/2022 art. 32: the data subject's access),
in one document: what the OPDs sent and what became of it, their corrections, the
enrolments, every month and what happened to it, the bills and payments that carry the
months, refused months, dead letters that carry the NIK, who read the person's data and
when, and any erasure.

Read through the ``finance`` views and the ``registry`` tables only."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from typing import Any

import asyncpg

from services.privacy import access_log

SECTIONS = ("submitted", "decisions", "corrections", "enrolments", "months", "history",
            "bills", "credits", "refused_months", "bpjs_verdicts", "bpjs_bill_lines",
            "dead_letters", "access_log", "erasure")

_QUERIES: dict[str, str] = {
    # rows OPDs sent through the gateway, as sent (with the gateway's own refusals)
    "submitted": """
        SELECT s.submission_id, s.opd_code, s.token_name, s.source, s.submitted_at,
               r.row_number, r.event_id, r.event_type, r.programme, r.errors, r.event,
               r.published_at
          FROM registry.submission_rows r JOIN registry.submissions s USING (submission_id)
         WHERE r.nik = $1 ORDER BY s.submitted_at, r.row_number""",
    # every event the validator decided and what the ledger did with it
    "decisions": """
        SELECT event_id, event_type, programme, opd_code, decision, status, errors, warnings,
               decided_at, booked_periods, held_periods, cancelled_periods,
               duplicate_periods, refused_periods, cancellation_refused_periods
          FROM finance.registration_outcomes WHERE nik = $1 ORDER BY decided_at""",
    # the enrolling OPD's corrections of name, birth date, phone or address, oldest first
    "corrections": """
        SELECT event_id, programme, opd_code, corrected, reason, occurred_at, recorded_at
          FROM registry.corrections WHERE nik = $1 ORDER BY occurred_at, recorded_at""",
    "months": """
        SELECT contribution_id, programme, period, due_date, amount_idr, jkk_idr, jkm_idr,
               opd_code, category, kecamatan, funding_source, status, bill_id,
               bill_sequence, payment_id, paid_at, booked_at, cancelled_at, generation
          FROM finance.contributions WHERE nik = $1 ORDER BY programme, period, generation""",
    "history": """
        SELECT programme, period, contribution_id, event, at, amount_idr, opd_code, detail,
               generation
          FROM finance.worker_history WHERE nik = $1 ORDER BY period, at""",
    "bills": """
        SELECT bill_id, programme, period, sequence, due_date, status, payment_id,
               payment_reference, paid_at, billing
          FROM finance.bills
         WHERE bill_id IN (SELECT bill_id FROM finance.contributions
                            WHERE nik = $1 AND bill_id IS NOT NULL)
         ORDER BY programme, period, sequence""",
    "credits": """
        SELECT credit_id, source, contribution_id, payment_id, programme, period, bill_id,
               amount_idr, status, recorded_at, refunded_at, refund_reason
          FROM finance.credits WHERE nik = $1 ORDER BY recorded_at""",
    "refused_months": """
        SELECT contribution_id, programme, period, generation, opd_code, amount_idr, reason,
               seen_at, booked_since
          FROM finance.refused_contributions WHERE nik = $1 ORDER BY seen_at""",
    # BPJS's verdicts on the worker (KPJ or BPJS's reason), every one received, newest first
    "bpjs_verdicts": """
        SELECT verification_id, programme, status, kpj, effective_period, reason_code, reason,
               verified_at, received_at, cancelled_months, standing
          FROM finance.bpjs_verdicts WHERE nik = $1 ORDER BY verified_at DESC""",
    # the lines of BPJS's bills that name the worker, and how each was reconciled
    "bpjs_bill_lines": """
        SELECT bpjs_bill_id, programme, period, kpj, line_number, outcome, expected_idr,
               billed_idr, payable_idr
          FROM finance.bpjs_reconciliation WHERE nik = $1
         ORDER BY bpjs_bill_id, period""",
    "dead_letters": """
        SELECT dead_letter_id, service, topic, partition, "offset", reason, detail,
               key_text, value_text, recorded_at
          FROM finance.dead_letters
         WHERE key_text = $1 OR strpos(value_text, $1) > 0 ORDER BY dead_letter_id""",
}
# The erasures, also those recorded under the pseudonym that replaced the NIK.
_ERASURES = """
    SELECT kind, erased_at, cutoff, erased_by, rows FROM privacy.erasures
     WHERE nik = $1 OR nik = $2 ORDER BY erased_at, id"""


def _plain(row: asyncpg.Record) -> dict[str, Any]:
    item = dict(row)
    for key in ("errors", "warnings", "event", "corrected"):
        if isinstance(item.get(key), str):
            try:
                item[key] = json.loads(item[key])
            except ValueError:
                pass
    return item


async def subject_record(connection: asyncpg.Connection | asyncpg.Pool,
                         nik: str, pseudonym: str) -> dict[str, Any]:
    """The document of one NIK: {"nik", "generated_at", "found", <section>: [rows]}.
    ``pseudonym`` is the NIK's keyed pseudonym: only the erasures are looked up by it (what
    is kept under it is no longer this person's record)."""
    document: dict[str, Any] = {"nik": nik, "generated_at": datetime.now(UTC)}
    for section, sql in _QUERIES.items():
        document[section] = [_plain(r) for r in await connection.fetch(sql, nik)]
    state = await connection.fetchrow(
        "SELECT version, state, updated_at FROM registry.worker_state WHERE nik = $1", nik)
    document["enrolments"] = [] if state is None else json.loads(state["state"]).get(
        "enrollments", [])
    document["access_log"] = await access_log.read(connection, nik=nik, limit=10_000)
    document["erasure"] = [_plain(r) for r in await connection.fetch(_ERASURES, nik, pseudonym)]
    document["found"] = any(document[s] for s in SECTIONS if s not in ("access_log", "erasure"))
    return {k: document[k] for k in ("nik", "generated_at", "found", *SECTIONS)}


def json_value(value: object) -> object:
    """A value JSON lacks, as the API shows it: dates and times in ISO 8601, ids as text."""
    if isinstance(value, date | datetime):
        return value.isoformat()
    return str(value)


def as_json(document: dict[str, Any]) -> str:
    return json.dumps(document, ensure_ascii=False, indent=2, default=json_value) + "\n"
