"""The end of the financial archive (UU 27/2022 art. 43): a worker's NIK stays with the money
trail for each programme's ``[privacy] archive_years`` after the end of the last paid month,
then the purge replaces it by its keyed pseudonym (an HMAC of the deployment secret,
:meth:`PrivacyKeys.pseudonym`) everywhere PostgreSQL holds it. The same NIK always gets the
same pseudonym, so every month, bill and journal line stays with one (unnamed) worker and
every sum per programme and month is unchanged.

The tables are append-only by trigger: like the retention purge, this runs as their owner
and lifts their user triggers inside its own transaction only; the booking and its
cancellation that name each other by NIK are checked once both changed (deferred keys)."""

from __future__ import annotations

import json
import uuid
from collections import Counter
from datetime import date

import asyncpg

from services.privacy.keys import PrivacyKeys

# Every column that holds one NIK as text (a test checks that the catalog has no other).
NIK_COLUMNS = (
    "ledger.contributions", "ledger.cancellations", "ledger.early_cancellations",
    "ledger.held_contributions", "ledger.duplicate_attempts", "ledger.refused_contributions",
    "ledger.renewal_ranks", "ledger.bpjs_submission_rows", "ledger.bpjs_verifications",
    "ledger.bpjs_cancelled_months", "ledger.bpjs_bill_lines", "registry.worker_state",
    "registry.decisions", "registry.submission_rows", "registry.corrections", "privacy.erasures",
)
# JSON text that names NIKs (quoted), possibly many per row.
JSON_COLUMNS = (("ledger.outbox", "event", "text"),
                ("registry.submission_rows", "event", "text"),
                ("registry.worker_state", "state", "jsonb"),
                ("privacy.personal_data_access", "filters", "jsonb"))
# Tables whose append-only triggers the replacement lifts for itself.
_GUARDED = ("ledger.contributions", "ledger.cancellations", "ledger.early_cancellations",
            "ledger.held_contributions", "ledger.duplicate_attempts",
            "ledger.refused_contributions", "ledger.renewal_ranks", "ledger.bpjs_submission_rows",
            "ledger.bpjs_verifications", "ledger.bpjs_cancelled_months", "ledger.bpjs_bill_lines",
            "ledger.outbox", "ledger.dead_letters", "registry.submission_rows",
            "registry.corrections", "privacy.personal_data_access", "privacy.erasures")
_DEFERRED_KEYS = ("ledger.cancellations_of_a_booking",
                  "ledger.contributions_previous_slot_cancelled")


def nik_pseudonym(keys: PrivacyKeys, nik: str) -> str:
    """The pseudonym that replaces ``nik`` in text columns (a version 8 UUID)."""
    return str(keys.pseudonym("nik", nik))


def number_pseudonym(pseudonym: str) -> int:
    """The same pseudonym where the NIK is kept as a number (coverage.workers): negative, so
    never a NIK."""
    return -(uuid.UUID(pseudonym).int >> 65) - 1


async def pseudonymise(connection: asyncpg.Connection, keys: PrivacyKeys, niks: list[str],
                       before: date, erased_by: str) -> None:
    """Replace each of ``niks`` by its pseudonym and record it in privacy.erasures (under the
    pseudonym); call inside a transaction."""
    if not niks:
        return
    pseudonyms = {nik: nik_pseudonym(keys, nik) for nik in niks}
    mapping = json.dumps(pseudonyms)
    await connection.execute(f"SET CONSTRAINTS {', '.join(_DEFERRED_KEYS)} DEFERRED")
    for table in _GUARDED:
        await connection.execute(f"ALTER TABLE {table} DISABLE TRIGGER USER")
    rows: Counter[str] = Counter()
    for table in NIK_COLUMNS:
        changed = await connection.fetch(
            f"UPDATE {table} SET nik = $1::jsonb ->> nik WHERE nik = ANY($2::text[]) "
            f"RETURNING nik", mapping, niks)
        if table != "privacy.erasures":
            rows.update(r["nik"] for r in changed)
    for table, column, kind in JSON_COLUMNS:
        await connection.execute(
            f"UPDATE {table} SET {column} = privacy.pseudonymise_json({column}::text, "
            f"$1::jsonb)::{kind} WHERE {column}::text ~ '\"[0-9]{{16}}\"' "
            f"AND privacy.pseudonymise_json({column}::text, $1::jsonb) <> {column}::text",
            mapping)
    await connection.execute(
        "UPDATE privacy.personal_data_access SET niks = ARRAY(SELECT coalesce($1::jsonb ->> n, n) "
        "FROM unnest(niks) n) WHERE niks && $2::text[]", mapping, niks)
    await connection.execute(
        "UPDATE ledger.dead_letters SET key = convert_to($1::jsonb ->> convert_from(key, "
        "'UTF8'), 'UTF8') WHERE key = ANY($2::bytea[])",
        mapping, [nik.encode() for nik in niks])
    for table in ("coverage.workers", "coverage.verdicts"):
        await connection.execute(
            f"UPDATE {table} SET nik = ($1::jsonb ->> nik::text)::bigint "
            "WHERE nik = ANY($2::bigint[])",
            json.dumps({nik: number_pseudonym(p) for nik, p in pseudonyms.items()}),
            [int(nik) for nik in niks])
    await connection.execute(f"SET CONSTRAINTS {', '.join(_DEFERRED_KEYS)} IMMEDIATE")
    for table in _GUARDED:
        await connection.execute(f"ALTER TABLE {table} ENABLE TRIGGER USER")
    await connection.executemany(
        "INSERT INTO privacy.erasures (nik, cutoff, erased_by, rows, kind) "
        "VALUES ($1, $2, $3, $4, 'nik')",
        [(p, before, erased_by, rows[p]) for p in pseudonyms.values()])
