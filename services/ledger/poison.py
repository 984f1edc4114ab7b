"""Poison records of the ledger: which failures are a record's own fault, and finding such
records within a batch.

A write fails for one of three reasons. A transient outage (connection lost, serialization
failure, deadlock: :data:`services.runtime.database.RETRYABLE`) is retried. A fault of the
ledger itself (an undefined table after a bad deploy, a disk full, a statement timeout) is
no record's fault either: it is retried too, with the service not ready, rather than
dead-lettering every record behind it. Anything else (a value out of range, a constraint
the record breaks, a NUL byte, a value the driver cannot encode) is a *poison* record: the
batch is split in halves until the records that fail alone are found; the others are
written and the poisons become dead letters (:mod:`services.runtime.deadletter`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

import asyncpg

from services.runtime.database import RETRYABLE

R = TypeVar("R")
T = TypeVar("T")

DETAIL_MAX = 2000

# SQLSTATE classes that are the ledger's or the server's fault, never a record's.
_SYSTEMIC_CLASSES = frozenset({
    "08",  # connection exception
    "25",  # invalid transaction state
    "40",  # transaction rollback (serialization failure, deadlock)
    "42",  # syntax error or access rule violation (undefined table, no privilege)
    "53",  # insufficient resources (disk full, out of memory)
    "55",  # object not in prerequisite state (lock not available)
    "57",  # operator intervention (statement timeout, shutdown)
    "58",  # system error
    "F0", "HV", "XX",
})
_REASONS = {
    "22003": "out_of_range",  # numeric_value_out_of_range
    "22021": "invalid_text",  # character_not_in_repertoire (a NUL byte, bad UTF-8)
    "22P05": "invalid_text",  # untranslatable_character
    "22001": "too_long",  # string_data_right_truncation
    "23502": "not_null_violation",
    "23503": "foreign_key_violation",
    "23505": "unique_violation",
    "23514": "check_violation",
}


def poison_reason(exc: BaseException) -> str | None:
    """The stable reason code when ``exc`` is the fault of the record(s) written; None for a
    transient or systemic failure (retry it)."""
    if isinstance(exc, RETRYABLE):
        return None
    if isinstance(exc, asyncpg.PostgresError):
        state = exc.sqlstate or ""
        if state[:2] in _SYSTEMIC_CLASSES:
            return None
        if state in _REASONS:
            return _REASONS[state]
        text = str(exc)
        if state.startswith("22"):  # the driver's own check of an argument is 22000
            return "out_of_range" if "out of" in text and "range" in text else "invalid_value"
        if state.startswith("23"):
            return "constraint_violation"
        return "refused_by_database"
    if isinstance(exc, OverflowError):  # the driver cannot encode it (e.g. > int64 in COPY)
        return "out_of_range"
    if isinstance(exc, UnicodeError):
        return "invalid_text"
    if isinstance(exc, ValueError | TypeError | ArithmeticError | LookupError):
        return "unprocessable"
    return None


def describe(exc: BaseException) -> str:
    """What was seen, for a person: the exception class, its message and constraint."""
    text = f"{type(exc).__name__}: {exc}"
    constraint = getattr(exc, "constraint_name", None)
    if constraint:
        text += f" (constraint {constraint})"
    return text[:DETAIL_MAX]


class Poisoned(Exception):  # noqa: N818 - not an error of the caller: a verdict
    """A write failed because of the records written (see :func:`poison_reason`)."""

    def __init__(self, reason: str, cause: BaseException) -> None:
        super().__init__(reason)
        self.reason = reason
        self.detail = describe(cause)


async def isolate(
    items: Sequence[T],
    write: Callable[[Sequence[T]], Awaitable[R]],
    on_written: Callable[[R], None],
    on_poison: Callable[[T, Poisoned], Awaitable[None]],
) -> int:
    """Write ``items`` in one go; when that is :class:`Poisoned`, split the batch in halves
    (in order) and write each, down to the single records that fail alone, which go to
    ``on_poison``. Returns how many records were poison."""
    try:
        on_written(await write(items))
        return 0
    except Poisoned as poisoned:
        if len(items) == 1:
            await on_poison(items[0], poisoned)
            return 1
    middle = len(items) // 2
    found = await isolate(items[:middle], write, on_written, on_poison)
    return found + await isolate(items[middle:], write, on_written, on_poison)
