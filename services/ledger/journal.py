"""The Postgres adapter of the journal: the chart's accounts of a programme, opened once, and
the transfers of a batch, written in one statement."""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from services.ledger.accounts import Transfer, chart_of

_OPEN = """
INSERT INTO ledger.accounts (code, kind, purpose, owner, description)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[])
ON CONFLICT (code) DO NOTHING
"""


async def open_accounts(connection: asyncpg.Connection, programme: str,
                        funding_source: str) -> None:
    """Create the accounts a programme funded from ``funding_source`` posts to (once)."""
    await connection.execute(_OPEN, *(list(c) for c in zip(*chart_of(programme, funding_source),
                                                           strict=True)))


async def post(connection: asyncpg.Connection, transfers: Sequence[Transfer]) -> None:
    """Write a batch's transfers."""
    if transfers:
        await connection.copy_records_to_table(
            "transfers", schema_name="ledger",
            columns=("transfer_id", "kind", "debit_account", "credit_account", "amount_idr"),
            records=[(t.transfer_id, t.kind, t.debit_account, t.credit_account, t.amount_idr)
                     for t in transfers])
