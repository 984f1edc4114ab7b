"""The validator's memory in PostgreSQL: per-NIK worker state and the decision rows.

One transaction per batch of messages: advisory locks on the batch's NIKs (sorted, so two
validator processes that got one NIK on different partitions serialise on it, whatever
partitioner its publisher used), their states, each message decided in order, the new
states and the decision rows (with the accepted corrections, and dead letters) written,
commit. Only then does the agent send the batch's outputs.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

import asyncpg

from services.domain.bpjs_rejections import stop_rejected_months
from services.domain.enrolment import WorkerState, empty_state, read_state
from services.runtime.database import RETRYABLE
from services.runtime.deadletter import DeadLetter, record_dead_letters
from services.validator.process import (
    Incoming,
    Outcome,
    correction_row,
    decision_row,
    internal_error,
)

log = logging.getLogger(__name__)

SERVICE = "validator"

_LOCK = """
SELECT pg_advisory_xact_lock(k)
  FROM (SELECT DISTINCT hashtextextended('registry.worker_state:' || nik, 0) AS k
          FROM unnest($1::text[]) AS nik ORDER BY k) AS keys
"""
_LOAD = "SELECT nik, version, state FROM registry.worker_state WHERE nik = ANY($1::text[])"
# Months the ledger cancelled because BPJS rejected the worker (docs/bpjs.md).
_BPJS_STOPPED = """
SELECT nik, verification_id::text, programme, period FROM ledger.bpjs_cancelled_months
 WHERE nik = ANY($1::text[])"""
_INSERT_STATES = """
INSERT INTO registry.worker_state (nik, version, state)
SELECT nik, version, state::jsonb FROM unnest($1::text[], $2::integer[], $3::text[])
    AS s(nik, version, state)
"""
_SAVE = _INSERT_STATES + """ON CONFLICT (nik) DO UPDATE
   SET version = EXCLUDED.version, state = EXCLUDED.state, updated_at = now()"""
_DECISION = """
INSERT INTO registry.decisions (event_id, event_type, nik, programme, opd_code, outcome,
    periods, errors, warnings, schedule_ids, rejection_id, source_topic, source_partition,
    source_offset)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb, $9::jsonb, $10, $11, $12, $13, $14)
ON CONFLICT (event_id) DO NOTHING
"""

_CORRECTION = """
INSERT INTO registry.corrections (event_id, nik, programme, opd_code, corrected, reason,
    occurred_at)
VALUES ($1, $2, $3, $4, $5::jsonb, $6, $7)
ON CONFLICT (event_id) DO NOTHING
"""

Decider = Callable[[Incoming, WorkerState], Outcome]


def load_state(stored: str, version: int) -> WorkerState:
    """A NIK's state from its registry.worker_state row (the JSON text and its version)."""
    return read_state(stored, version)


def dump_state(state: WorkerState) -> str:
    """The JSON text a state is stored as."""
    return state.model_dump_json()


def _dead_letter(incoming: Incoming, exc: BaseException) -> DeadLetter:
    source = incoming.source
    return DeadLetter(SERVICE, source.topic, source.partition, source.offset, incoming.key,
                      incoming.value, "internal_error", f"{type(exc).__name__}: {exc}"[:2000])


def _failed(incoming: Incoming, exc: BaseException, letters: list[DeadLetter]) -> Outcome:
    log.error("validator failed on an event; rejected as internal_error and kept as a dead "
              "letter (%s)", type(exc).__name__,
              extra={"topic": incoming.source.topic, "partition": incoming.source.partition,
                     "offset": incoming.source.offset, "code": "internal_error"})
    letters.append(_dead_letter(incoming, exc))
    return internal_error(incoming)


async def decide_batch(
    connection: asyncpg.Connection, batch: Sequence[Incoming], decide: Decider
) -> list[Outcome]:
    """Decide ``batch`` in one transaction (see the module's docstring). An exception on
    one message rejects it as internal_error and records it as a dead letter; the others
    are decided. Database errors propagate (the caller retries transient ones)."""
    niks = sorted({i.nik for i in batch if i.nik is not None})
    async with connection.transaction():
        if niks:
            await connection.execute(_LOCK, niks)
        stored = {r["nik"]: r for r in await connection.fetch(_LOAD, niks)} if niks else {}
        states: dict[str, WorkerState] = {}
        changed: set[str] = set()
        if niks:
            await _stop_rejected(connection, niks, stored, states, changed)
        letters: list[DeadLetter] = []
        outcomes: list[Outcome] = []
        rows: list[tuple[object, ...]] = []
        corrections: list[tuple[object, ...]] = []
        for incoming in batch:
            try:
                state = empty_state()
                if incoming.nik is not None:
                    if incoming.nik not in states and incoming.nik in stored:
                        row = stored[incoming.nik]
                        states[incoming.nik] = load_state(row["state"], row["version"])
                    state = states.get(incoming.nik, state)
                outcome = decide(incoming, state)
                row = decision_row(outcome)
                correction = correction_row(outcome)
            except Exception as exc:  # one bad message never stops the others
                outcomes.append(_failed(incoming, exc, letters))
                continue
            if outcome.state is not None and outcome.nik is not None:
                states[outcome.nik] = outcome.state
                changed.add(outcome.nik)
            if row is not None:
                rows.append(row)
            if correction is not None:
                corrections.append(correction)
            outcomes.append(outcome)
        if changed:
            order = sorted(changed)
            await connection.execute(
                _SAVE, order, [states[n].version for n in order],
                [dump_state(states[n]) for n in order])
        if rows:
            await connection.executemany(_DECISION, rows)
        if corrections:
            await connection.executemany(_CORRECTION, corrections)
        await record_dead_letters(connection, letters)
    return outcomes


async def _stop_rejected(connection: asyncpg.Connection, niks: list[str],
                         stored: dict[str, asyncpg.Record], states: dict[str, WorkerState],
                         changed: set[str]) -> None:
    """Cancel in the batch's states the months BPJS's rejections cancelled in the ledger."""
    found: dict[str, list[tuple[str, str, str]]] = {}
    for r in await connection.fetch(_BPJS_STOPPED, niks):
        found.setdefault(r["nik"], []).append((r["verification_id"], r["programme"],
                                               r["period"]))
    for nik, stopped in found.items():
        row = stored.get(nik)
        state = load_state(row["state"], row["version"]) if row is not None else empty_state()
        updated = stop_rejected_months(state, stopped)
        if updated is not None:
            states[nik] = updated
            changed.add(nik)


async def decide_alone(
    connection: asyncpg.Connection, incoming: Incoming, decide: Decider
) -> Outcome:
    """One message in a transaction of its own (a batch that PostgreSQL refused for a
    reason other than an outage is split into these); refused alone, it is rejected as
    internal_error and kept as a dead letter."""
    try:
        (outcome,) = await decide_batch(connection, [incoming], decide)
        return outcome
    except Exception as exc:  # refused alone: this message is the reason
        if _transient(exc):
            raise
        letters: list[DeadLetter] = []
        outcome = _failed(incoming, exc, letters)
        async with connection.transaction():
            await record_dead_letters(connection, letters)
        return outcome


def _transient(exc: BaseException) -> bool:
    return isinstance(exc, RETRYABLE)
