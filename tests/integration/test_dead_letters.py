"""Dead letters on the real PostgreSQL: stored once per source record with the raw bytes,
counted per reason, listed in finance.dead_letters and by `iuran deadletter list`; the
table is append-only."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys

import asyncpg
import pytest

from services.runtime import metrics
from services.runtime.deadletter import DeadLetter, record_dead_letters

pytestmark = pytest.mark.integration


def _letter(offset: int, value: bytes | None, reason: str = "out_of_range") -> DeadLetter:
    return DeadLetter(service="ledger", topic="test.dead", partition=2, offset=offset,
                      key=b"3573011001900001", value=value, reason=reason,
                      detail="DataError: value out of int64 range")


def _count(reason: str) -> float:
    value = metrics.DEAD_LETTERS.labels("ledger", "test.dead", reason)._value.get()
    return float(value)


async def test_recorded_once_with_raw_bytes_and_counted(conn: asyncpg.Connection) -> None:
    raw = b'{"amount_idr": 100000000000000000000, "note": "a\x00b\xff"}'
    before = _count("out_of_range")
    letters = [_letter(10, raw), _letter(11, None, reason="not_json")]
    assert await record_dead_letters(conn, letters) == 2
    # A replay (the offset committed late, the batch read again) records nothing twice.
    assert await record_dead_letters(conn, letters) == 0
    assert _count("out_of_range") == before + 1

    row = await conn.fetchrow(
        """SELECT value, reason, detail FROM ledger.dead_letters
            WHERE topic = 'test.dead' AND partition = 2 AND "offset" = 10""")
    assert row["value"] == raw and row["reason"] == "out_of_range"
    shown = await conn.fetchrow(
        """SELECT value_text, value_bytes, key_text FROM finance.dead_letters
            WHERE topic = 'test.dead' AND "offset" = 10""")
    assert shown["value_bytes"] == len(raw)
    assert "\\000" in shown["value_text"] and "\\377" in shown["value_text"]
    assert shown["key_text"] == "3573011001900001"


async def test_append_only(conn: asyncpg.Connection) -> None:
    await record_dead_letters(conn, [_letter(20, b"{}")])
    with pytest.raises(asyncpg.exceptions.InsufficientPrivilegeError):
        await conn.execute("DELETE FROM ledger.dead_letters WHERE topic = 'test.dead'")
    with pytest.raises(asyncpg.exceptions.InsufficientPrivilegeError):
        await conn.execute("UPDATE ledger.dead_letters SET reason = 'x'")


async def test_roles(conn: asyncpg.Connection) -> None:
    grants = {(r["role"], r["object"], r["privilege"]) for r in await conn.fetch(
        """SELECT grantee AS role, table_schema || '.' || table_name AS object,
                  privilege_type AS privilege
             FROM information_schema.role_table_grants
            WHERE table_name IN ('dead_letters', 'refused_contributions')""")}
    for table in ("ledger.dead_letters", "ledger.refused_contributions"):
        assert ("iuran_ledger_writer", table, "INSERT") in grants
        assert ("iuran_ledger_writer", table, "UPDATE") not in grants
        assert not any(r == "iuran_finance" and o == table for r, o, _ in grants)
    for view in ("finance.dead_letters", "finance.refused_contributions"):
        assert ("iuran_finance", view, "SELECT") in grants


def _iuran(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "IURAN_DATABASE_URL": url}
    return subprocess.run([sys.executable, "-m", "services.cli.main", *args], env=env,
                          capture_output=True, text=True, timeout=120, check=False)


async def test_iuran_deadletter_list(conn: asyncpg.Connection, ledger_url: str) -> None:
    nik = "3573014507900001"
    value = f'{{"nik": "{nik}", "amount_idr": 100000000000000000000}}'.encode()
    await record_dead_letters(conn, [DeadLetter(
        service="ledger", topic="test.cli", partition=0, offset=7, key=nik.encode(),
        value=value, reason="out_of_range", detail="OverflowError: value out of int64 range")])

    listed = await asyncio.to_thread(_iuran, ledger_url, "deadletter", "list", "--json",
                                     "--service", "ledger")
    assert listed.returncode == 0, listed.stderr
    ours = [item for line in listed.stdout.splitlines()
            if (item := json.loads(line))["topic"] == "test.cli"]
    assert len(ours) == 1
    assert (ours[0]["offset"], ours[0]["reason"], ours[0]["value_bytes"]) == (
        7, "out_of_range", len(value))
    assert nik not in listed.stdout and "3573**********01" in ours[0]["value"]

    shown = await asyncio.to_thread(_iuran, ledger_url, "deadletter", "list",
                                    "--personal-data")
    assert shown.returncode == 0, shown.stderr
    assert "test.cli[0]@7 out_of_range" in shown.stdout and nik in shown.stdout

    for bad in (["--service", "nope"], ["--limit", "0"], ["--limit", "x"], ["--frobnicate"]):
        result = await asyncio.to_thread(_iuran, ledger_url, "deadletter", "list", *bad)
        assert result.returncode == 2, bad
        assert result.stdout == "" and len(result.stderr.strip().splitlines()) == 1, bad
