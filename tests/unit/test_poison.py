"""Which write failures are a record's own fault (a dead letter) and which are retried; and
the bisection that finds the poison records of a batch."""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg
import pytest

from services.ledger.poison import Poisoned, isolate, poison_reason


def _pg(cls: type[asyncpg.PostgresError], message: str = "") -> asyncpg.PostgresError:
    return cls(message)


@pytest.mark.parametrize(("exc", "reason"), [
    (_pg(asyncpg.exceptions.NumericValueOutOfRangeError), "out_of_range"),
    (_pg(asyncpg.exceptions.DataError,
         "invalid input for query argument $4: 10 (value out of int64 range)"), "out_of_range"),
    (OverflowError("value out of int64 range"), "out_of_range"),
    (_pg(asyncpg.exceptions.CharacterNotInRepertoireError), "invalid_text"),
    (_pg(asyncpg.exceptions.CheckViolationError), "check_violation"),
    (_pg(asyncpg.exceptions.UniqueViolationError), "unique_violation"),
    (_pg(asyncpg.exceptions.ForeignKeyViolationError), "foreign_key_violation"),
    (_pg(asyncpg.exceptions.InvalidDatetimeFormatError), "invalid_value"),
    (_pg(asyncpg.exceptions.RaiseError), "refused_by_database"),
    (ValueError("bad"), "unprocessable"),
    # transient: retried
    (_pg(asyncpg.exceptions.SerializationError), None),
    (_pg(asyncpg.exceptions.DeadlockDetectedError), None),
    (ConnectionResetError(), None),
    (asyncpg.exceptions.ConnectionDoesNotExistError(), None),
    # the ledger's or the server's own fault: retried, never blamed on a record
    (_pg(asyncpg.exceptions.UndefinedTableError), None),
    (_pg(asyncpg.exceptions.QueryCanceledError), None),
    (_pg(asyncpg.exceptions.DiskFullError), None),
    (_pg(asyncpg.exceptions.InternalServerError), None),
])
def test_poison_reason(exc: BaseException, reason: str | None) -> None:
    assert poison_reason(exc) == reason


async def test_isolate_writes_the_good_records_and_hands_over_each_poison() -> None:
    bad = {3, 7, 8}
    written: list[int] = []
    poisoned: list[tuple[int, str]] = []

    async def write(items: Sequence[int]) -> list[int]:
        if bad & set(items):
            raise Poisoned("out_of_range", OverflowError("value out of int64 range"))
        return list(items)

    async def on_poison(item: int, verdict: Poisoned) -> None:
        poisoned.append((item, verdict.reason))

    found = await isolate(list(range(10)), write, written.extend, on_poison)
    assert found == 3
    assert written == [0, 1, 2, 4, 5, 6, 9]  # in order
    assert poisoned == [(3, "out_of_range"), (7, "out_of_range"), (8, "out_of_range")]
