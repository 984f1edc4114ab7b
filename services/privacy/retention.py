"""The end of retention (UU 27/2022 art. 42-44): a worker's name, birth date, phone and
address are erased once every programme that holds the worker has kept them for its
``[privacy] retention_years`` after the end of the worker's last paid month (or last month,
or last registration, when none was paid). The money trail stays: NIK, months, bills,
payments and journal are untouched; at the end of the financial archive
(``archive_years``) the NIK itself is replaced by its keyed pseudonym
(:mod:`services.privacy.pseudonyms`).

PostgreSQL holds those fields in the events OPDs sent through the gateway
(``registry.submission_rows.event``), in the corrections of the enrolling OPD
(``registry.corrections.corrected``) and in the raw bytes of dead letters
(``ledger.dead_letters.value``); these tables refuse changes by trigger, so the purge
lifts their user triggers inside its own transaction only (it runs as their owner)."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta

import asyncpg

from services.domain.periods import parse_period
from services.domain.programme import Programme
from services.privacy.keys import PrivacyKeys
from services.privacy.pseudonyms import pseudonymise

_NIK = re.compile(r"[0-9]{16}")  # a pseudonym that replaced one is a UUID

# The worker fields of a registration event that are erased.
ERASED_FIELDS = ("full_name", "birth_date", "phone", "kelurahan")
_ERASE_EVENT = "event::jsonb" + "".join(f" #- '{{worker,{f}}}'" for f in ERASED_FIELDS)
_HAS_FIELDS = ("(event::jsonb -> 'worker') ?| array["
               + ", ".join(f"'{f}'" for f in ERASED_FIELDS) + "]")

_LAST_SEEN = """
SELECT nik, programme, NULL::date AS day,
       coalesce(max(period) FILTER (WHERE status = 'paid'), max(period)) AS period
  FROM finance.contributions GROUP BY nik, programme
UNION ALL
SELECT r.nik, coalesce(r.programme, s.programme), max(s.submitted_at)::date, NULL
  FROM registry.submission_rows r JOIN registry.submissions s USING (submission_id)
 WHERE r.nik IS NOT NULL GROUP BY 1, 2
UNION ALL
SELECT nik, programme, max(decided_at)::date, NULL
  FROM finance.registration_decisions GROUP BY nik, programme"""

_SUBMISSION_ROWS = f"""
  FROM registry.submission_rows
 WHERE nik = ANY($1::text[]) AND event IS NOT NULL AND {_HAS_FIELDS}"""

_CORRECTIONS = """
  FROM registry.corrections WHERE nik = ANY($1::text[]) AND corrected ?| $2::text[]"""

_DEAD_LETTERS = """
  FROM ledger.dead_letters
 WHERE value IS NOT NULL
   AND (recorded_at < $2::date
        OR EXISTS (SELECT 1 FROM unnest($1::text[]) n
                    WHERE position(convert_to(n, 'UTF8') IN value) > 0
                       OR key = convert_to(n, 'UTF8')))"""


@dataclass(frozen=True)
class Purge:
    before: date
    workers: list[str]        # NIKs past retention with something left to erase
    submission_rows: int
    dead_letters: int
    archived: list[str]       # NIKs past the financial archive: replaced by pseudonyms


def plus_years(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February
        return day.replace(year=day.year + years, day=28) + timedelta(days=1)


def _end_of(period: str) -> date:
    year, month = parse_period(period)
    return date(year + month // 12, month % 12 + 1, 1)


def _retention_years(programme: Programme) -> int:
    return programme.privacy.retention_years


async def past_retention(connection: asyncpg.Connection,
                         programmes: Mapping[str, Programme], before: date,
                         years: Callable[[Programme], int] = _retention_years) -> list[str]:
    """NIKs whose retention (``years`` of a programme) ended on or before ``before`` in
    every programme that holds them: from the end of the last paid month (or the last month)
    of each programme, or, where a programme has no month of the worker, from the last
    registration; a programme not configured any more keeps the longest configured period.
    A NIK already replaced by its pseudonym is not one."""
    longest = max((years(p) for p in programmes.values()), default=10)
    starts: dict[tuple[str, str], date] = {}
    with_months: set[tuple[str, str]] = set()
    for row in await connection.fetch(_LAST_SEEN):
        if not _NIK.fullmatch(row["nik"]):
            continue
        key = (row["nik"], row["programme"] or "")
        if row["period"] is not None:  # the months decide where there are any
            start = _end_of(row["period"])
            if key not in with_months:
                with_months.add(key)
                starts.pop(key, None)
        elif key in with_months:
            continue
        else:
            start = row["day"]
        starts[key] = max(start, starts.get(key, date.min))
    ends: dict[str, date] = {}
    for (nik, programme_id), start in starts.items():
        programme = programmes.get(programme_id)
        end = plus_years(start, years(programme) if programme else longest)
        ends[nik] = max(end, ends.get(nik, date.min))
    return sorted(nik for nik, end in ends.items() if end <= before)


def _archive_years(programme: Programme) -> int:
    return programme.privacy.archive_years


async def past_archive(connection: asyncpg.Connection, programmes: Mapping[str, Programme],
                       before: date) -> list[str]:
    """NIKs whose financial archive ended on or before ``before`` in every programme."""
    return await past_retention(connection, programmes, before, years=_archive_years)


def _oldest_kept(programmes: Mapping[str, Programme], before: date) -> date:
    """Dead letters recorded before this day are past every programme's retention."""
    longest = max((p.privacy.retention_years for p in programmes.values()), default=10)
    return plus_years(before, -longest)


async def plan(connection: asyncpg.Connection, programmes: Mapping[str, Programme],
               before: date) -> Purge:
    """What a purge at ``before`` erases (nothing is changed)."""
    niks = await past_retention(connection, programmes, before)
    oldest = _oldest_kept(programmes, before)
    rows = await connection.fetch(f"SELECT DISTINCT nik {_SUBMISSION_ROWS}", niks)
    letters = await connection.fetchval(f"SELECT count(*) {_DEAD_LETTERS}", niks, oldest)
    touched = {r["nik"] for r in rows}
    letter_niks = await connection.fetch(
        """SELECT DISTINCT n FROM ledger.dead_letters, unnest($1::text[]) n
            WHERE value IS NOT NULL AND (position(convert_to(n, 'UTF8') IN value) > 0
                                         OR key = convert_to(n, 'UTF8'))""", niks)
    touched |= {r["n"] for r in letter_niks}
    touched |= {r["nik"] for r in await connection.fetch(
        f"SELECT DISTINCT nik {_CORRECTIONS}", niks, list(ERASED_FIELDS))}
    count = await connection.fetchval(f"SELECT count(*) {_SUBMISSION_ROWS}", niks)
    archived = await past_archive(connection, programmes, before)
    return Purge(before, sorted(touched), count, letters, archived)


async def purge(connection: asyncpg.Connection, programmes: Mapping[str, Programme],
                before: date, erased_by: str, keys: PrivacyKeys) -> Purge:
    """Erase what :func:`plan` finds and replace the NIKs past the archive by their
    pseudonyms, in one transaction, and record each erased worker."""
    async with connection.transaction():
        found = await plan(connection, programmes, before)
        niks, oldest = found.workers, _oldest_kept(programmes, before)
        per_nik = {r["nik"]: r["rows"] for r in await connection.fetch(
            f"SELECT nik, count(*) AS rows {_SUBMISSION_ROWS} GROUP BY nik", niks)}
        await connection.execute("ALTER TABLE registry.submission_rows DISABLE TRIGGER USER")
        await connection.execute(
            f"UPDATE registry.submission_rows SET event = ({_ERASE_EVENT})::text "
            f"WHERE nik = ANY($1::text[]) AND event IS NOT NULL AND {_HAS_FIELDS}", niks)
        await connection.execute("ALTER TABLE registry.submission_rows ENABLE TRIGGER USER")
        await connection.execute("ALTER TABLE registry.corrections DISABLE TRIGGER USER")
        await connection.execute(
            "UPDATE registry.corrections SET corrected = corrected - $2::text[] "
            "WHERE nik = ANY($1::text[]) AND corrected ?| $2::text[]", niks, list(ERASED_FIELDS))
        await connection.execute("ALTER TABLE registry.corrections ENABLE TRIGGER USER")
        await connection.execute("ALTER TABLE ledger.dead_letters DISABLE TRIGGER USER")
        await connection.execute(f"UPDATE ledger.dead_letters SET value = NULL "
                                 f"WHERE dead_letter_id IN (SELECT dead_letter_id "
                                 f"{_DEAD_LETTERS})", niks, oldest)
        await connection.execute("ALTER TABLE ledger.dead_letters ENABLE TRIGGER USER")
        await connection.executemany(
            "INSERT INTO privacy.erasures (nik, cutoff, erased_by, rows) VALUES ($1, $2, $3, $4)",
            [(nik, before, erased_by, per_nik.get(nik, 0)) for nik in niks])
        await pseudonymise(connection, keys, found.archived, before, erased_by)
    return found
