"""The columns of each finance view have one home, its row model (services.ledger.view_rows):
the views PostgreSQL has after the migrations must have exactly those columns (and those
it declares not selected)."""

from __future__ import annotations

import asyncpg
import pytest

from services.ledger.views import VIEWS

pytestmark = pytest.mark.integration


async def test_every_finance_view_has_the_columns_of_its_row_model(ledger_url: str) -> None:
    connection = await asyncpg.connect(ledger_url)
    try:
        rows = await connection.fetch(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_schema = 'finance' AND table_name = ANY($1::text[]) "
            "ORDER BY table_name, ordinal_position", list(VIEWS))
    finally:
        await connection.close()
    in_sql: dict[str, set[str]] = {}
    for row in rows:
        in_sql.setdefault(row["table_name"], set()).add(row["column_name"])
    declared = {name: {*spec.columns, *getattr(spec.row, "not_selected", ())}
                for name, spec in VIEWS.items()}
    differ = {name: {"only in SQL": sorted(in_sql.get(name, set()) - columns),
                     "only in the model": sorted(columns - in_sql.get(name, set()))}
              for name, columns in declared.items() if in_sql.get(name, set()) != columns}
    assert not differ, f"finance views and their row models differ: {differ}"
