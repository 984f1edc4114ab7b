"""What the bench asks the ledger, only through the finance view ``finance.contributions``."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import asyncpg

# Booked (held contributions have no booked_at): with only this predicate PostgreSQL drops
# the view's joins and its held branch, so counting, the latency query and the watch read
# ledger.contributions alone.
BOOKED = "booked_at IS NOT NULL"
# Booked and still standing (not cancelled, not held), for the exactness check.
STANDING = "status IN ('booked', 'billed', 'paid')"


async def booked(connection: asyncpg.Connection) -> tuple[int, float | None]:
    """How many contributions are booked, and when the last was (epoch seconds)."""
    row = await connection.fetchrow(
        f"SELECT count(*) AS n, extract(epoch FROM max(booked_at))::float8 AS last "
        f"FROM finance.contributions WHERE {BOOKED}")
    return int(row["n"]), row["last"]


async def registrations_booked(connection: asyncpg.Connection) -> dict[str, tuple[int, float]]:
    """For each registration: its contributions booked and when its last month was."""
    rows = await connection.fetch(
        "SELECT registration_event_id::text AS id, count(*) AS n, "
        "extract(epoch FROM max(booked_at))::float8 AS last "
        f"FROM finance.contributions WHERE {BOOKED} GROUP BY registration_event_id")
    return {r["id"]: (int(r["n"]), float(r["last"])) for r in rows}


async def exactness(connection: asyncpg.Connection,
                    expected: Iterable[tuple[Any, int]]) -> dict[str, Any]:
    """Compare the ledger with the expected (contribution_id, amount_idr): every id booked
    once with its amount, nothing missing, nothing extra."""
    async with connection.transaction():
        await connection.execute(
            "CREATE TEMP TABLE bench_expected (contribution_id uuid PRIMARY KEY, "
            "amount_idr bigint NOT NULL) ON COMMIT DROP")
        await connection.copy_records_to_table(
            "bench_expected", records=expected, columns=("contribution_id", "amount_idr"))
        row = await connection.fetchrow(f"""
            WITH ledger AS (
                SELECT contribution_id, count(*) AS copies, min(amount_idr) AS amount_idr,
                       bool_and({STANDING}) AS booked
                  FROM finance.contributions GROUP BY contribution_id)
            SELECT (SELECT count(*) FROM bench_expected) AS expected_contributions,
                   (SELECT coalesce(sum(amount_idr), 0) FROM bench_expected) AS expected_idr,
                   (SELECT count(*) FROM finance.contributions) AS ledger_rows,
                   (SELECT coalesce(sum(amount_idr), 0) FROM finance.contributions
                     WHERE {STANDING}) AS ledger_booked_idr,
                   count(*) FILTER (WHERE l.contribution_id IS NULL) AS missing,
                   count(*) FILTER (WHERE e.contribution_id IS NULL) AS unexpected,
                   count(*) FILTER (WHERE l.copies > 1) AS duplicated,
                   count(*) FILTER (WHERE l.amount_idr <> e.amount_idr) AS wrong_amount,
                   count(*) FILTER (WHERE NOT l.booked) AS not_booked
              FROM ledger l FULL JOIN bench_expected e USING (contribution_id)""")
    result = {key: int(value) for key, value in row.items()}
    result["exact"] = (
        result["missing"] == result["unexpected"] == result["duplicated"]
        == result["wrong_amount"] == result["not_booked"] == 0
        and result["ledger_rows"] == result["expected_contributions"]
        and result["ledger_booked_idr"] == result["expected_idr"])
    return result
