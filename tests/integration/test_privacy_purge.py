"""Retention ends: `iuran privacy purge --before DATE` erases name, birth date, phone and
address of the workers whose programmes' retention ended, in the events OPDs sent and in
dead letters' raw bytes, and leaves the money trail (under the NIK's pseudonym once the
financial archive ends as well); a dry run says the same and changes
nothing; a worker still within retention keeps everything."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any, TypeVar

import asyncpg
import pytest

from services.domain.programme import Programme, load_programmes
from services.ledger import book
from services.ledger.budget import ensure_allocation
from services.privacy.keys import privacy_keys
from services.privacy.pseudonyms import nik_pseudonym
from services.runtime.settings import Settings
from tests.support.cli import Run, cli_with, on_db
from tests.support.ledger import NikSource, schedule

pytestmark = pytest.mark.integration

T = TypeVar("T")


@pytest.fixture
def cli(ledger_url: str, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> Iterator[Run]:
    with cli_with(monkeypatch, capsys, IURAN_DATABASE_URL=ledger_url) as run:
        yield run


async def _submit(connection: asyncpg.Connection, nik: str, programme: str,
                  name: str) -> None:
    submission = uuid.uuid4()
    event = {"event_id": str(uuid.uuid4()), "event_type": "registered", "programme": programme,
             "opd_code": "DINSOS", "worker": {
                 "nik": nik, "full_name": name, "birth_date": "1990-01-01", "sex": "M",
                 "category": "ojek_online", "kecamatan": "Klojen", "kelurahan": "Kauman",
                 "phone": "0812-1111-2222"}, "coverage_start": "2025-12", "months": 3}
    await connection.execute(
        "INSERT INTO registry.submissions (submission_id, opd_code, token_name, "
        "request_hash, source, programme, row_count) VALUES ($1, 'DINSOS', 'test', 'x', "
        "'json', $2, 1)", submission, programme)
    await connection.execute(
        "INSERT INTO registry.submission_rows (submission_id, row_number, event_id, "
        "event_type, nik, programme, event) VALUES ($1, 1, $2, 'registered', $3, $4, $5)",
        submission, uuid.UUID(event["event_id"]), nik, programme, json.dumps(event))
    await connection.execute(
        "INSERT INTO ledger.dead_letters (service, topic, partition, \"offset\", key, value, "
        "reason) VALUES ('ledger', 'iuran.contributions.v1', 0, $1, $2, $3, 'undecodable')",
        uuid.uuid4().int % 10**12, nik.encode(), json.dumps(event).encode())


async def _state(connection: asyncpg.Connection, nik: str) -> dict[str, Any]:
    events = [json.loads(e) for e in await connection.fetchval(
        "SELECT array_agg(event) FROM registry.submission_rows WHERE nik = $1", nik)]
    letters = await connection.fetch(
        "SELECT value FROM ledger.dead_letters WHERE key = $1", nik.encode())
    months = await connection.fetchval(
        "SELECT count(*) FROM finance.contributions WHERE nik = $1", nik)
    return {"workers": [e["worker"] for e in events],
            "letters": [r["value"] for r in letters], "months": months}




def test_purge_erases_personal_data_past_retention_and_keeps_the_money_trail(
    ledger_url: str, cli: Run,
) -> None:
    programmes = load_programmes(Settings().programmes_dir)
    malang: Programme = programmes["malang-2025"]
    province: Programme = programmes["jatim-malang-2026"]
    old, recent = NikSource().take(2)

    async def seed(connection: asyncpg.Connection) -> int:
        await book.prepare(connection)
        for programme in (malang, province):
            await ensure_allocation(connection, programme)
        await book.book_schedules(connection, [
            schedule(malang, old, ["2025-12", "2026-01", "2026-02"]),
            schedule(province, recent, ["2026-10", "2026-11", "2026-12"],
                     opd_code="DINSOS_JATIM")])
        await _submit(connection, old, malang.id, "Sutrisno Wibowo")
        await _submit(connection, recent, province.id, "Wahyuni Lestari")
        journal: int = await connection.fetchval("SELECT count(*) FROM ledger.transfers")
        return journal

    # its archive ends with the retention: the purge also replaces the NIK by its pseudonym
    pseudonym = nik_pseudonym(privacy_keys(Settings()), old)

    async def states(connection: asyncpg.Connection) -> dict[str, dict[str, Any]]:
        return {nik: await _state(connection, nik) for nik in (old, recent)}

    async def erased_state(connection: asyncpg.Connection) -> dict[str, Any]:
        return await _state(connection, pseudonym)

    async def kept_state(connection: asyncpg.Connection) -> dict[str, Any]:
        return await _state(connection, recent)

    journal = on_db(ledger_url, seed)
    before = on_db(ledger_url, states)

    # malang-2025 keeps 10 years after its last month (2026-02): until 2036-03-01
    code, out, err = cli("privacy", "purge", "--before", "2036-03-01", "--dry-run")
    assert code == 0, err
    assert "for 1 workers: would erase" in out and "in 1 submitted rows" in out
    assert on_db(ledger_url, states) == before
    code, out, _ = cli("privacy", "purge", "--before", "2036-02-29", "--dry-run")
    assert "for 0 workers" in out

    code, out, err = cli("privacy", "purge", "--before", "2036-03-01")
    assert code == 0, err
    assert "for 1 workers: erased" in out and old not in out
    erased, kept = on_db(ledger_url, erased_state), on_db(ledger_url, kept_state)
    assert erased["workers"] == [{"nik": pseudonym, "sex": "M", "category": "ojek_online",
                                  "kecamatan": "Klojen"}]
    assert erased["letters"] == [None] and erased["months"] == 3
    assert kept == before[recent]

    async def recorded(connection: asyncpg.Connection) -> tuple[int, int, int]:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await connection.execute("UPDATE registry.submission_rows SET event = '{}' "
                                     "WHERE nik = $1", recent)
        return (await connection.fetchval("SELECT count(*) FROM ledger.transfers"),
                await connection.fetchval(
                    "SELECT rows FROM privacy.erasures WHERE nik = $1 "
                    "AND kind = 'personal_data'", pseudonym),
                await connection.fetchval(
                    "SELECT count(*) FROM privacy.personal_data_access WHERE what = "
                    "'iuran privacy purge' AND $1 = ANY(niks)", pseudonym))

    assert on_db(ledger_url, recorded) == (journal, 1, 2)
    code, out, _ = cli("privacy", "purge", "--before", "2036-03-01")
    assert "for 0 workers" in out, "a second purge found something left"
    code, _, err = cli("privacy", "purge", "--before", "someday")
    assert code == 2 and "is not a date" in err
