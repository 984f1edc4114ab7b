"""The end of the financial archive: `iuran privacy purge` replaces the NIK of a worker whose
archive ended by its keyed pseudonym everywhere PostgreSQL holds it; the sums per programme
and month are unchanged, the same worker keeps one pseudonym, the person's record by the old
NIK holds nothing but the erasures, and a dry run changes nothing."""

from __future__ import annotations

import json
import uuid
from datetime import date
from typing import Any

import asyncpg
import pytest

from services.domain.programme import Privacy, Programme, load_programmes
from services.ledger import book
from services.ledger.budget import ensure_allocation
from services.privacy.keys import privacy_keys
from services.privacy.pseudonyms import NIK_COLUMNS, nik_pseudonym, number_pseudonym
from services.privacy.retention import plan, purge
from services.runtime.settings import Settings
from tests.integration.test_privacy_purge import Run, _submit, cli, on_db
from tests.support.ledger import NikSource, schedule

pytestmark = pytest.mark.integration
__all__ = ["cli"]

_TABLES = """
SELECT format('%I.%I', table_schema, table_name) FROM information_schema.tables
 WHERE table_schema IN ('ledger', 'registry', 'privacy', 'coverage')
   AND table_type = 'BASE TABLE' ORDER BY 1"""


async def _where(connection: asyncpg.Connection, nik: str) -> dict[str, int]:
    """Per table, the rows whose text (any column; bytea as hex) contains ``nik``."""
    found = {}
    needle = nik.encode().hex()
    for (table,) in await connection.fetch(_TABLES):
        count = await connection.fetchval(
            f"SELECT count(*) FROM {table} t WHERE strpos(t::text, $1) > 0 "
            f"OR strpos(t::text, $2) > 0", nik, needle)
        if count:
            found[table] = count
    return found


_TOTALS = {
    "months": "SELECT programme, period, count(*), sum(amount_idr) FROM finance.contributions "
              "GROUP BY 1, 2 ORDER BY 1, 2",
    "arrears": "SELECT programme, count(*) FROM finance.arrears GROUP BY 1 ORDER BY 1",
    "journal": "SELECT kind, count(*), sum(amount_idr) FROM ledger.transfers GROUP BY 1 "
               "ORDER BY 1",
    "history": "SELECT programme, period, event, count(*) FROM finance.worker_history "
               "GROUP BY 1, 2, 3 ORDER BY 1, 2, 3",
}


async def _totals(connection: asyncpg.Connection) -> dict[str, list[tuple[Any, ...]]]:
    return {name: [tuple(r) for r in await connection.fetch(sql)]
            for name, sql in _TOTALS.items()}


async def _seed(connection: asyncpg.Connection, malang: Programme, province: Programme,
                old: str, recent: str) -> None:
    await book.prepare(connection)
    for programme in (malang, province):
        await ensure_allocation(connection, programme)
    months = ["2025-12", "2026-01", "2026-02"]
    await book.book_schedules(connection, [
        schedule(malang, old, months),
        schedule(province, recent, ["2026-10", "2026-11", "2026-12"], opd_code="DINSOS_JATIM")])
    # a month cancelled and booked again: a booking and its cancellation name each other
    await book.book_schedules(connection, [schedule(malang, old, months[2:], kind="cancelled")])
    await book.book_schedules(connection, [schedule(malang, old, months[2:], generation=1,
                                                    event=f"{old}:again")])
    await _submit(connection, old, malang.id, "Sutrisno Wibowo")
    await _submit(connection, recent, province.id, "Wahyuni Lestari")
    correction = uuid.uuid4()
    await connection.execute(
        "INSERT INTO registry.decisions (event_id, event_type, nik, programme, opd_code, "
        "outcome, source_topic, source_partition, source_offset) VALUES ($1, 'corrected', $2, "
        "$3, 'DISNAKER', 'accepted', 'iuran.registrations.v1', 0, 1)", correction, old,
        malang.id)
    await connection.execute(
        "INSERT INTO registry.corrections (event_id, nik, programme, opd_code, corrected, "
        "occurred_at) VALUES ($1, $2, $3, 'DISNAKER', $4, now())", correction, old, malang.id,
        json.dumps({"full_name": "Sutrisno Wibawa", "phone": "0813-1111-2222",
                    "kecamatan": "Klojen", "kelurahan": "Kauman"}))
    await connection.execute(
        "INSERT INTO coverage.workers (programme, dimension, key, nik, booked_months) "
        "VALUES ($1, 'total', '', $2, 3), ($3, 'total', '', $4, 3)",
        malang.id, int(old), province.id, int(recent))


def test_the_nik_past_the_archive_is_replaced_by_its_pseudonym_everywhere(
    ledger_url: str, cli: Run, niks: NikSource,
) -> None:
    programmes = load_programmes(Settings().programmes_dir)
    malang, province = programmes["malang-2025"], programmes["jatim-malang-2026"]
    old, recent = niks.take(2)
    pseudonym = nik_pseudonym(privacy_keys(Settings()), old)

    async def seed(connection: asyncpg.Connection) -> None:
        await _seed(connection, malang, province, old, recent)

    on_db(ledger_url, seed)
    code, _, err = cli("privacy", "subject", old)  # a read of the person, in the access log
    assert code == 0, err
    totals = on_db(ledger_url, _totals)
    where_old = on_db(ledger_url, lambda c: _where(c, old))
    where_recent = on_db(ledger_url, lambda c: _where(c, recent))
    assert {"ledger.contributions", "ledger.cancellations", "ledger.outbox",
            "ledger.dead_letters", "registry.submission_rows", "registry.decisions",
            "registry.corrections", "coverage.workers",
            "privacy.personal_data_access"} <= set(where_old)

    # malang-2025 archives 10 years after its last month (2026-02): until 2036-03-01
    code, out, err = cli("privacy", "purge", "--before", "2036-03-01", "--dry-run")
    assert code == 0, err
    assert "the financial archive ended for 1 workers: would replace" in out
    where_old["privacy.personal_data_access"] += 1  # the dry run's read
    assert on_db(ledger_url, lambda c: _where(c, old)) == where_old
    assert on_db(ledger_url, lambda c: _where(c, pseudonym)) == {}

    code, out, err = cli("privacy", "purge", "--before", "2036-03-01")
    assert code == 0, err
    assert "the financial archive ended for 1 workers: replaced" in out and old not in out
    assert on_db(ledger_url, lambda c: _where(c, old)) == {}
    assert on_db(ledger_url, lambda c: _where(c, recent)) == where_recent
    assert on_db(ledger_url, _totals) == totals

    async def after(connection: asyncpg.Connection) -> dict[str, Any]:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await connection.execute(
                "UPDATE ledger.contributions SET kecamatan = 'x' WHERE nik = $1", pseudonym)
        return {
            "months": await connection.fetchval(
                "SELECT count(*) FROM finance.contributions WHERE nik = $1", pseudonym),
            "coverage": await connection.fetchval(
                "SELECT booked_months FROM coverage.workers WHERE nik = $1",
                number_pseudonym(pseudonym)),
            "erasures": [tuple(r) for r in await connection.fetch(
                "SELECT kind, nik FROM privacy.erasures WHERE nik IN ($1, $2) ORDER BY id",
                old, pseudonym)],
        }

    state = on_db(ledger_url, after)
    assert state == {"months": 4, "coverage": 3,
                     "erasures": [("personal_data", pseudonym), ("nik", pseudonym)]}

    code, out, err = cli("privacy", "subject", old, "--json")
    assert code == 0, err
    record = json.loads(out)
    assert not record["found"]
    assert [e["kind"] for e in record["erasure"]] == ["personal_data", "nik"]
    assert old not in json.dumps({k: v for k, v in record.items()
                                  if k not in ("nik", "access_log")})
    assert pseudonym not in out

    code, out, _ = cli("privacy", "purge", "--before", "2040-01-01")
    assert "the financial archive ended for 1 workers" in out  # the province's worker
    assert on_db(ledger_url, lambda c: _where(c, pseudonym))["ledger.contributions"] == 4


def test_personal_data_is_erased_at_retention_and_the_nik_kept_until_the_archive_ends(
    ledger_url: str, niks: NikSource,
) -> None:
    programmes = {
        programme_id: programme.model_copy(update={"privacy": Privacy(
            retention_years=10, archive_years=12)})
        for programme_id, programme in load_programmes(Settings().programmes_dir).items()}
    malang, province = programmes["malang-2025"], programmes["jatim-malang-2026"]
    old, recent = niks.take(2)
    keys = privacy_keys(Settings())

    async def run(connection: asyncpg.Connection) -> tuple[Any, ...]:
        await _seed(connection, malang, province, old, recent)
        planned = await plan(connection, programmes, date(2036, 3, 1))
        done = await purge(connection, programmes, date(2036, 3, 1), "test", keys)
        months = await connection.fetchval(
            "SELECT count(*) FROM finance.contributions WHERE nik = $1", old)
        corrected = json.loads(await connection.fetchval(
            "SELECT corrected FROM registry.corrections WHERE nik = $1", old))
        later = await purge(connection, programmes, date(2038, 3, 1), "test", keys)
        moved = await connection.fetchval(
            "SELECT count(*) FROM finance.contributions WHERE nik = $1",
            nik_pseudonym(keys, old))
        return planned, done, months, corrected, later, moved

    planned, done, months, corrected, later, moved = on_db(ledger_url, run)
    assert planned == done and done.workers == [old] and done.archived == []
    assert months == 4 and corrected == {"kecamatan": "Klojen"}
    assert later.workers == [recent] and later.archived == [old] and moved == 4


def test_every_nik_column_is_replaced(ledger_url: str) -> None:
    async def columns(connection: asyncpg.Connection) -> list[tuple[str, str]]:
        return [tuple(r) for r in await connection.fetch(
            "SELECT format('%I.%I', c.table_schema, c.table_name), c.data_type "
            "FROM information_schema.columns c JOIN information_schema.tables t "
            "USING (table_schema, table_name) WHERE c.column_name = 'nik' "
            "AND t.table_type = 'BASE TABLE' ORDER BY 1")]

    found = on_db(ledger_url, columns)
    assert sorted(t for t, kind in found if kind == "text") == sorted(NIK_COLUMNS)
    assert [t for t, kind in found if kind != "text"] == ["coverage.verdicts", "coverage.workers"]
