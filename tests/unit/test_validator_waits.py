"""How the validator waits out PostgreSQL (fakes, no infrastructure): not ready while it
waits, ready again after; a batch that fails for one of its messages is decided message by
message at once."""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest

from services.ledger.migrate import NOT_MIGRATED, SchemaNotMigrated
from services.runtime.settings import Settings
from services.validator import app as validator_app
from services.validator import registry


class _Connection:
    def __init__(self) -> None:
        self.closed = False

    def is_closed(self) -> bool:
        return self.closed

    async def close(self) -> None:
        self.closed = True


def _validator(health: validator_app.Health) -> validator_app.Validator:
    validator = validator_app.Validator(Settings(database_url="postgresql://x/y"), {},
                                        None, None, health)  # type: ignore[arg-type]

    async def connect() -> Any:
        return _Connection()

    validator._connect = connect  # type: ignore[method-assign]
    return validator


async def test_a_postgresql_fault_is_waited_out_not_ready_meanwhile(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    health = validator_app.Health()
    seen: list[tuple[bool, str]] = []
    calls: list[int] = []

    async def decide_batch(connection: Any, batch: list[Any], decide: Any) -> list[Any]:
        calls.append(1)
        if len(calls) < 3:
            seen.append(health())
            raise asyncpg.exceptions.ConnectionDoesNotExistError("gone")
        seen.append(health())
        return ["decided"]

    monkeypatch.setattr(registry, "decide_batch", decide_batch)
    outcomes = await _validator(health)._decide_until_done([])
    assert outcomes == ["decided"]
    assert seen == [(True, "ok"), (False, "waiting for PostgreSQL"),
                    (False, "waiting for PostgreSQL")]
    assert health() == (True, "ok")


async def test_a_batch_refused_for_one_message_is_decided_one_by_one_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    health = validator_app.Health()

    async def decide_batch(connection: Any, batch: list[Any], decide: Any) -> list[Any]:
        raise asyncpg.exceptions.CharacterNotInRepertoireError("NUL")

    async def decide_alone(connection: Any, incoming: Any, decide: Any) -> Any:
        return f"alone {incoming}"

    monkeypatch.setattr(registry, "decide_batch", decide_batch)
    monkeypatch.setattr(registry, "decide_alone", decide_alone)
    assert await _validator(health)._decide_until_done(["a", "b"]) == ["alone a", "alone b"]
    assert health() == (True, "ok")


async def test_an_unmigrated_schema_is_waited_out_not_ready_saying_so(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    health = validator_app.Health()
    validator = _validator(health)
    seen: list[tuple[bool, str]] = []
    attempts: list[int] = []

    async def connect() -> Any:
        attempts.append(1)
        if len(attempts) < 3:
            raise SchemaNotMigrated(NOT_MIGRATED)
        seen.append(health())
        return _Connection()

    async def decide_batch(connection: Any, batch: list[Any], decide: Any) -> list[Any]:
        return ["decided"]

    validator._connect = connect  # type: ignore[method-assign]
    monkeypatch.setattr(registry, "decide_batch", decide_batch)
    monkeypatch.setattr(validator_app, "MAX_BACKOFF_SECONDS", 0.01)
    assert await validator._decide_until_done([]) == ["decided"]
    assert seen == [(False, NOT_MIGRATED)]
    assert health() == (True, "ok")
