"""services/ledger/schema.sql shows reviewers what the migrations build: it must be fresh."""

from __future__ import annotations

from services.ledger.dump_schema import SCHEMA_FILE, render


def test_the_checked_in_ledger_schema_is_what_the_migrations_build() -> None:
    assert SCHEMA_FILE.read_text(encoding="utf-8") == render(), (
        "services/ledger/schema.sql is stale: run `make schemas`")
