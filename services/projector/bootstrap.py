"""Seed the projector's table from the ledger when the broker lost it.

The embedded broker keeps events in memory: after it restarts, the contributions topic and
the table's changelog are empty while the ledger still holds every booked month. For each
assigned partition that recovered no worker at all, the workers of that partition are read
back from the ledger (the system of record) and written to the table and its changelog.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

import asyncpg
from aiokafka.partitioner import murmur2

from services.domain.coverage import WorkerState

log = logging.getLogger(__name__)

_ACTIVE = """
SELECT nik, programme, period, opd_code, category, kecamatan, amount_idr
  FROM finance.contributions
 WHERE status IN ('booked', 'billed', 'paid')
"""


def partition_of(nik: str, partitions: int) -> int:
    """The partition Kafka's default partitioner gives a message keyed by this NIK."""
    return (murmur2(nik.encode()) & 0x7FFFFFFF) % partitions


async def ledger_states(database_url: str, wanted: set[int],
                        partitions: int) -> dict[str, WorkerState]:
    """Worker states, as the projector keeps them, of the NIKs in the wanted partitions."""
    connection = await asyncpg.connect(database_url)
    try:
        rows = await connection.fetch(_ACTIVE)
    finally:
        await connection.close()
    states: dict[str, WorkerState] = {}
    for row in rows:
        nik = row["nik"]
        if partition_of(nik, partitions) not in wanted:
            continue
        state = states.setdefault(nik, {"applied": [], "months": {}})
        state["months"][f"{row['programme']}|{row['period']}"] = [
            row["opd_code"], row["category"], row["kecamatan"], row["amount_idr"]]
    return states


def empty_partitions(assigned: Iterable[int], keys: Iterable[Any], partitions: int) -> set[int]:
    have = {partition_of(str(k), partitions) for k in keys}
    return set(assigned) - have
