"""The validator's state and outputs on a stack of this module's own (its validator's
producer gives up on a produce request after REQUEST_TIMEOUT seconds):

* the broker stops answering while a batch is being sent, for longer than the request
  timeout: every accepted registration's schedule still reaches the contributions topic
  and the ledger;
* one NIK published by two OPDs, with aiokafka (murmur2) and confluent-kafka (librdkafka's
  CRC32), lands on two partitions read by two validator processes: the second is refused
  as a duplicate;
* the same upload row sent again after a full deregistration is rejected with a code,
  never swallowed by a replay of cancelled contribution ids.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
import uuid
import zlib
from collections.abc import Iterator
from typing import Any

import asyncpg
import pytest
from aiokafka.partitioner import murmur2

from schemas.events import TOPIC_CONTRIBUTIONS, TOPIC_REGISTRATIONS, TOPIC_REJECTED
from services.domain import errors as E
from tests.support import faults
from tests.support.faults import (
    FaultStack,
    broker_frozen,
    group_members,
    metric_value,
    metrics_text,
    readyz_body,
    record,
    wait_for,
)
from tests.support.kafka import collect, publish
from tests.support.workers import as_message, deregistration, registration, unique_nik

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

REQUEST_TIMEOUT = 3.0
LOCK_KEY = "SELECT hashtextextended('registry.worker_state:' || $1, 0)"


@pytest.fixture(scope="module")
def validator_stack() -> Iterator[FaultStack]:
    # the service processes read it from their environment
    previous = os.environ.get("IURAN_KAFKA_REQUEST_TIMEOUT_SECONDS")
    os.environ["IURAN_KAFKA_REQUEST_TIMEOUT_SECONDS"] = str(REQUEST_TIMEOUT)
    try:
        with faults.fault_stack("validator-state") as stack:
            yield stack
    finally:
        if previous is None:
            os.environ.pop("IURAN_KAFKA_REQUEST_TIMEOUT_SECONDS", None)
        else:
            os.environ["IURAN_KAFKA_REQUEST_TIMEOUT_SECONDS"] = previous


async def booked(url: str, niks: list[str]) -> list[asyncpg.Record]:
    connection = await asyncpg.connect(url)
    try:
        return await connection.fetch(
            "SELECT nik, opd_code, period, status FROM finance.contributions "
            "WHERE nik = ANY($1::text[]) ORDER BY nik, period", niks)
    finally:
        await connection.close()


async def decisions(url: str, event_ids: list[uuid.UUID]) -> dict[uuid.UUID, asyncpg.Record]:
    connection = await asyncpg.connect(url)
    try:
        rows = await connection.fetch(
            "SELECT * FROM registry.decisions WHERE event_id = ANY($1::uuid[])", event_ids)
        return {r["event_id"]: r for r in rows}
    finally:
        await connection.close()


async def test_a_broker_frozen_past_the_request_timeout_loses_no_schedule(
    validator_stack: FaultStack,
) -> None:
    stack, settings = validator_stack, validator_stack.settings
    events = [registration() for _ in range(40)]
    niks = [e.worker.nik for e in events]
    ids = [e.event_id for e in events]
    holder = await asyncpg.connect(stack.database_url)
    try:
        # Hold one NIK's registry lock: the validator's batch waits inside its transaction.
        key = await holder.fetchval(LOCK_KEY, niks[0])
        await holder.execute("SELECT pg_advisory_lock($1)", key)
        await publish(settings, TOPIC_REGISTRATIONS, [as_message(e) for e in events])

        async def batch_waiting() -> bool:
            return bool(await holder.fetchval(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"))

        assert await wait_for(batch_waiting, within=60), "the validator never took the batch"
        started = time.monotonic()
        with broker_frozen(settings.kafka_bootstrap):
            # the batch commits now and sends into a broker that answers nothing
            await holder.execute("SELECT pg_advisory_unlock($1)", key)

            async def decided() -> bool:
                return len(await decisions(stack.database_url, ids)) >= 1

            assert await wait_for(decided, within=30)

            async def waits_for_the_broker() -> dict[str, Any] | None:
                body = await asyncio.to_thread(readyz_body, settings, "validator")
                return body if body and "broker" in json.dumps(body) else None

            not_ready = await wait_for(waits_for_the_broker, within=4 * REQUEST_TIMEOUT)
            assert not_ready, "readiness stayed true while outputs were undelivered"

            async def timed_out_twice() -> bool:
                return stack.logs().count("outputs of a batch not delivered") >= 2

            # the sends gave up after the request timeout, and so did the batch's second
            # attempt: it keeps sending again (and waiting) until the broker answers
            assert await wait_for(timed_out_twice, within=20 * REQUEST_TIMEOUT)
            frozen = time.monotonic() - started
        assert frozen > 2 * REQUEST_TIMEOUT
    finally:
        await holder.close()

    async def all_booked() -> bool:
        return len(await booked(stack.database_url, niks)) >= 40 * 12

    assert await wait_for(all_booked, within=180), "not every schedule was booked"
    schedules = await collect(
        settings, TOPIC_CONTRIBUTIONS,
        lambda r: r.key is not None and r.key.decode() in niks, want=40, timeout=60)
    on_topic = {json.loads(r.value)["registration_event_id"] for r in schedules}
    assert on_topic == {str(i) for i in ids}
    rows = await booked(stack.database_url, niks)
    assert len(rows) == 40 * 12 and {r["status"] for r in rows} == {"booked"}
    record("validator.broker-frozen", registrations=40, frozen_seconds=round(frozen, 1),
           request_timeout_seconds=REQUEST_TIMEOUT, schedules_on_topic=len(on_topic),
           contributions_booked=len(rows))


def _partitions_differ(nik: str, partitions: int) -> bool:
    key = nik.encode()
    return (murmur2(key) & 0x7FFFFFFF) % partitions != zlib.crc32(key) % partitions


def _publish_with_librdkafka(bootstrap: str, messages: list[tuple[bytes, bytes]]) -> list[int]:
    """Publish with confluent-kafka on its default partitioner (librdkafka's
    consistent_random: CRC32 of the key); returns the partition of each message."""
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all"})
    partitions: dict[int, int] = {}
    errors: list[object] = []

    def on_delivery(index: int, error: object, message: Any) -> None:
        if error is not None:
            errors.append(error)
        else:
            partitions[index] = message.partition()

    for index, (key, value) in enumerate(messages):
        producer.produce(TOPIC_REGISTRATIONS, key=key, value=value,
                         on_delivery=lambda e, m, i=index: on_delivery(i, e, m))
    assert producer.flush(30) == 0 and not errors, errors
    return [partitions[i] for i in range(len(messages))]


async def test_one_nik_from_two_client_libraries_is_paid_once(
    validator_stack: FaultStack,
) -> None:
    stack, settings = validator_stack, validator_stack.settings
    second = stack.second_instances("validator-2", ["validator"])
    second.start()
    try:
        second.wait_ready(timeout=120)

        async def two_members() -> bool:
            return await group_members(settings, faults.GROUPS["validator"]) >= 2

        assert await wait_for(two_members, within=60)
        niks = []
        while len(niks) < 12:
            nik = unique_nik()
            if _partitions_differ(nik, settings.partitions):
                niks.append(nik)
        disnaker = [registration(nik=n, opd_code="DISNAKER") for n in niks]
        dishub = [registration(nik=n, opd_code="DISHUB") for n in niks]

        # The first NIK as the issue tells it: DISNAKER first (aiokafka), then DISHUB
        # (confluent-kafka); the others from both at once, each client on its own partition.
        first = disnaker[0]
        await publish(settings, TOPIC_REGISTRATIONS, [as_message(first)])

        async def first_decided() -> bool:
            return first.event_id in await decisions(stack.database_url, [first.event_id])

        assert await wait_for(first_decided, within=60)
        partitions = await asyncio.to_thread(
            _publish_with_librdkafka, settings.kafka_bootstrap, [as_message(dishub[0])])
        together = asyncio.to_thread(_publish_with_librdkafka, settings.kafka_bootstrap,
                                     [as_message(e) for e in dishub[1:]])
        _, crc_partitions = await asyncio.gather(
            publish(settings, TOPIC_REGISTRATIONS, [as_message(e) for e in disnaker[1:]]),
            together)
        partitions += crc_partitions
        for nik, partition in zip(niks, partitions, strict=True):
            key = nik.encode()
            assert partition == zlib.crc32(key) % settings.partitions  # librdkafka: CRC32
            assert partition != (murmur2(key) & 0x7FFFFFFF) % settings.partitions  # aiokafka

        ids = [e.event_id for e in disnaker + dishub]

        async def all_decided() -> dict[uuid.UUID, asyncpg.Record] | None:
            found = await decisions(stack.database_url, ids)
            return found if len(found) == len(ids) else None

        found = await wait_for(all_decided, within=90)
        assert found, "not every registration was decided"
        by_nik: dict[str, list[asyncpg.Record]] = {}
        for row in found.values():
            by_nik.setdefault(row["nik"], []).append(row)
        for nik, rows in by_nik.items():
            outcomes = sorted((r["outcome"], [e["code"] for e in json.loads(r["errors"])])
                              for r in rows)
            assert outcomes == [("accepted", []), ("rejected", [E.DUPLICATE_ENROLLMENT])], nik
        assert found[dishub[0].event_id]["outcome"] == "rejected"  # the second one
        # the two partitions of each NIK were read by different validator processes, or by
        # one: either way the state is one row in PostgreSQL
        sources = {(r["nik"], r["source_partition"]) for r in found.values()}
        assert len(sources) == 2 * len(niks)

        async def all_booked() -> bool:
            return len(await booked(stack.database_url, niks)) >= 12 * len(niks)

        assert await wait_for(all_booked, within=90)
        rows = await booked(stack.database_url, niks)
        assert len(rows) == 12 * len(niks)  # one payer per worker-month
        winners = {r["nik"]: r["opd_code"] for r in rows}
        assert winners[niks[0]] == "DISNAKER"
        rejected = await collect(
            settings, TOPIC_REJECTED,
            lambda r: json.loads(r.value).get("event_id") == str(dishub[0].event_id), want=1)
        assert [e["code"] for e in json.loads(rejected[0].value)["errors"]] == [
            E.DUPLICATE_ENROLLMENT]
        record("validator.two-partitioners", niks=len(niks), validators=2,
               accepted=len(niks), duplicates_refused=len(niks))
    finally:
        second.stop()


async def test_an_upload_sent_again_after_a_full_deregistration_is_rejected_with_a_code(
    validator_stack: FaultStack,
) -> None:
    stack, settings = validator_stack, validator_stack.settings
    nik = unique_nik()
    first = registration(nik=nik)
    stop = deregistration(nik, "2025-12")  # every month of the year
    await publish(settings, TOPIC_REGISTRATIONS, [as_message(first), as_message(stop)])

    async def all_cancelled() -> bool:
        rows = await booked(stack.database_url, [nik])
        return len(rows) == 12 and {r["status"] for r in rows} == {"cancelled"}

    assert await wait_for(all_cancelled, within=90)
    # the same row uploaded again: same event id (the upload derives it from the row),
    # another moment
    again = first.model_copy(update={"occurred_at": first.occurred_at.replace(hour=15)})
    await publish(settings, TOPIC_REGISTRATIONS, [as_message(again)])
    rejected = await collect(
        settings, TOPIC_REJECTED,
        lambda r: json.loads(r.value).get("event_id") == str(first.event_id), want=1)
    assert rejected, "the upload sent again was swallowed"
    body = json.loads(rejected[0].value)
    assert [e["code"] for e in body["errors"]] == [E.EVENT_ALREADY_DECIDED]
    assert body["rejection_id"]
    rows = await booked(stack.database_url, [nik])
    assert len(rows) == 12 and {r["status"] for r in rows} == {"cancelled"}
    # a new registration enrols the worker again
    back = registration(nik=nik, coverage_start="2026-01", months=6)
    await publish(settings, TOPIC_REGISTRATIONS, [as_message(back)])

    async def paid_again() -> bool:
        rows = await booked(stack.database_url, [nik])
        return sum(r["status"] == "booked" for r in rows) == 6

    assert await wait_for(paid_again, within=90)


async def test_a_registration_warning_is_counted_by_code(validator_stack: FaultStack) -> None:
    settings = validator_stack.settings
    event = registration()
    born = event.worker.birth_date
    worker = event.worker.model_copy(update={"birth_date": born.replace(
        day=1 if born.day != 1 else 2)})  # Dukcapil corrected it: a warning, not an error
    await publish(settings, TOPIC_REGISTRATIONS,
                  [as_message(event.model_copy(update={"worker": worker}))])
    name = "iuran_registration_warnings_total"

    async def counted() -> bool:
        text = await asyncio.to_thread(metrics_text, settings, "validator")
        return f'{name}{{code="{E.NIK_BIRTH_DATE_MISMATCH}"}}' in text and \
            metric_value(text, name) >= 1

    assert await wait_for(counted, within=60)
