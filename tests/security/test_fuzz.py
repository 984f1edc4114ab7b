"""Bad input into the topics the services consume: raw bytes, truncated and oversized JSON,
wrong types, Unicode edge cases and hostile strings. Every case is invalid by construction;
each must land in iuran.registrations.rejected.v1 with a stable code (never internal_error),
the stream must keep flowing, and the ledger must not change.

The cases are generated with hypothesis strategies (a fixed seed and count, printed) and
published in one batch through the shared stack, then matched to their rejections by source
topic, partition and offset. ``IURAN_FUZZ_CASES`` sets how many of each kind (make chaos
raises it); a kind whose space is smaller (the fixed values that are not objects, the
hostile strings) stops when hypothesis has tried them all, and the figures recorded list the
count of each kind that ran. ``IURAN_CHAOS_SEED`` replays a run.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections import Counter
from collections.abc import Callable
from typing import Any

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from schemas.events import TOPIC_PAYMENTS, TOPIC_REGISTRATIONS, TOPIC_REJECTED, RejectedEvent
from services.domain.errors import CATALOGUE
from services.runtime.kafka import client_options
from services.runtime.settings import Settings
from services.runtime.stack import ServiceProcesses
from tests.support import faults
from tests.support.kafka import collect, publish
from tests.support.settle import PAYMENTS_STAGE, handled
from tests.support.workers import as_message, registration

pytestmark = pytest.mark.integration

PER_KIND = faults.env_int("IURAN_FUZZ_CASES", 40)
SEED = faults.chaos_seeds(1)[0]
Case = tuple[str, bytes | None, bytes | None]  # (kind, key, value)

HOSTILE = [
    "'; DROP TABLE ledger.contributions; --", "\" OR 1=1 --", "1; SELECT pg_sleep(10)",
    "$$; COPY ledger.transfers TO PROGRAM 'id'; $$", "%s%s%s%n", "{0.__class__}", "${jndi:x}",
    "<script>alert(1)</script>", "../../../../etc/passwd", "\r\n2025-11-25 ERROR forged line",
    "\u202eFDP.exe", "\x00", "\ufeff", "\u200b\u200d", "A" * 5000, "🙂" * 300, "null",
    "NaN", "\\u0000", "Robert'); DELETE FROM ledger.transfers;--",
]
# Characters that look like digits or are invisible: a NIK made of them is not 16 ASCII digits.
LOOKALIKE_DIGITS = "０１２３４５６７８９٠١٢٣٤٥٦٧٨٩۰۱۲۳۴۵۶۷۸۹०१२३४५६७८९¹²³⁴"
INVISIBLE = ["\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad", "\u0301", "\u202e"]


def valid_json() -> dict[str, Any]:
    """A valid registration as a dict (a fresh NIK), to be broken by a strategy."""
    return json.loads(registration().model_dump_json())


# --- strategies, one per kind of bad input -----------------------------------------------

raw_bytes = st.binary(min_size=0, max_size=600).map(lambda b: ("raw_bytes", b"0" * 16, b))


@st.composite
def truncated(draw: st.DrawFn) -> Case:
    text = json.dumps(valid_json()).encode()
    cut = draw(st.integers(min_value=0, max_value=len(text) - 1))
    return "truncated_json", b"0" * 16, text[:cut]


@st.composite
def oversized(draw: st.DrawFn) -> Case:
    event = valid_json()
    filler = draw(st.sampled_from(["x", "é", "🙂", " ", "\\u0000"]))
    size = draw(st.integers(min_value=64 * 1024 + 1, max_value=200 * 1024))
    event["note"] = filler * (size // len(filler.encode()) + 1)
    where = draw(st.sampled_from(["note", "worker.full_name", "opd_code"]))
    if where != "note":
        huge = event.pop("note")
        if where == "worker.full_name":
            event["worker"]["full_name"] = huge
        else:
            event["opd_code"] = huge
    nik = event["worker"]["nik"]
    return "oversized_json", nik.encode(), json.dumps(event).encode()


# Values that pydantic will not coerce into the field's type (no "12" -> 12, no True -> 1,
# no Unix timestamp -> an aware datetime).
NOT_TEXT = [123, 1.5, True, None, [], {}, ["DISNAKER"], {"$ne": None}]
NOT_INT = ["twelve", "", 1.5, 13, 0, -1, 10**30, None, [], {}, [12], "1e3"]
WRONG_TYPES: dict[str, list[Any]] = {
    "event_id": ["not-a-uuid", 42, None, [], {}, "00000000-0000-0000-0000-00000000000g"],
    "event_type": ["registered ", "REGISTERED", 1, None, [], {"registered": True}],
    "occurred_at": ["2025-11-25T09:00:00", "yesterday", "1732500000Z", None, [],
                    "2025-02-30T09:00:00+07:00"],
    "opd_code": [*NOT_TEXT, ""],
    "programme": [*NOT_TEXT, ""],
    "coverage_start": ["2025-13", "12-2025", "2025/12", 202512, None, "", "2025-1"],
    "months": NOT_INT,
    "schema_version": [2, "1x", None, [], 0],
    "worker": [None, [], "worker", 1, True],
    "worker.nik": [3573014507900001, None, "", "357301450790000", "35730145079000011", [], {},
                   "3573014507900000", "3573013102900001", "9973014507900001"],
    "worker.full_name": NOT_TEXT,
    "worker.birth_date": ["1990-02-30", "05/07/1990", 19900705, None, [], "2090-01-01"],
    "worker.sex": ["X", "m ", "L", "P", 1, None, [], "MF"],
    "worker.category": ["driver", "OJEK_ONLINE", 1, None, [], ""],
    "worker.kecamatan": [*NOT_TEXT, "", "Atlantis"],
    "worker.kelurahan": [*NOT_TEXT, "", "Atlantis"],
}


def _put(event: dict[str, Any], path: str, value: Any) -> None:
    parts = path.split(".")
    target = event
    for part in parts[:-1]:
        target = target[part]
    target[parts[-1]] = value


@st.composite
def wrong_types(draw: st.DrawFn) -> Case:
    event = valid_json()
    nik = event["worker"]["nik"]
    path = draw(st.sampled_from(sorted(WRONG_TYPES)))
    value = draw(st.sampled_from(WRONG_TYPES[path]))
    optional = path in ("months", "schema_version")  # leaving these out is valid
    if optional or draw(st.booleans()):
        _put(event, path, value)
    else:  # or the required field left out altogether
        parts = path.split(".")
        holder = event if len(parts) == 1 else event[parts[0]]
        holder.pop(parts[-1], None)
    return "wrong_type", nik.encode(), json.dumps(event).encode()


@st.composite
def unicode_edges(draw: st.DrawFn) -> Case:
    event = valid_json()
    nik = event["worker"]["nik"]
    how = draw(st.sampled_from(["lookalike", "invisible", "surrogate", "name_and_nik",
                                "sex", "period", "event_type"]))
    if how == "lookalike":
        positions = draw(st.lists(st.integers(0, 15), min_size=1, max_size=16, unique=True))
        chars = list(nik)
        for p in positions:
            chars[p] = draw(st.sampled_from(LOOKALIKE_DIGITS))
        event["worker"]["nik"] = "".join(chars)
    elif how == "invisible":
        at = draw(st.integers(0, 16))
        event["worker"]["nik"] = nik[:at] + draw(st.sampled_from(INVISIBLE)) + nik[at:]
    elif how == "surrogate":  # a lone surrogate is valid JSON text but not valid Unicode
        text = json.dumps(event).replace(nik, nik[:8] + "\\ud800" + nik[8:])
        return "unicode", nik.encode(), text.encode()
    elif how == "name_and_nik":  # odd names together with an impossible NIK
        event["worker"]["full_name"] = draw(st.text(min_size=1, max_size=60))
        event["worker"]["nik"] = nik[:6] + "99" + nik[8:]  # day 99: no such date
    elif how == "sex":
        event["worker"]["sex"] = draw(st.sampled_from(["M\u0301", "Ｍ", "F\u200b", "ｆ"]))
    elif how == "period":
        event["coverage_start"] = draw(st.sampled_from(["２０２５-12", "2025‐12", "2025-١٢"]))
    else:
        event["event_type"] = draw(st.sampled_from(["registered\u200b", "rеgistered"]))
    key = str(event["worker"]["nik"]).encode("utf-8", "surrogatepass")  # key = NIK as sent
    return "unicode", key, json.dumps(event, ensure_ascii=draw(st.booleans())).encode()


@st.composite
def hostile(draw: st.DrawFn) -> Case:
    event = valid_json()
    nik = event["worker"]["nik"]
    text = draw(st.sampled_from(HOSTILE))
    field = draw(st.sampled_from(["worker.nik", "opd_code", "programme", "event_id",
                                  "coverage_start", "worker.kecamatan", "key"]))
    if field == "key":  # the key must be the NIK: anything else is refused
        return "hostile", text.encode("utf-8", "surrogatepass"), json.dumps(event).encode()
    _put(event, field, text)
    key = text if field == "worker.nik" else nik  # the key follows the NIK, as publishers do
    return "hostile", key.encode("utf-8", "surrogatepass"), json.dumps(event).encode()


# A fixed list (hypothesis would draw each at most once): every one is sent in every run.
NOT_OBJECTS: list[bytes | None] = [
    b"", b"null", b"true", b"0", b"-1e400", b"[]", b"\"registered\"", b"[" * 20000 + b"]" * 20000,
    b"{\"a\":" * 5000 + b"1" + b"}" * 5000, b"{}", b"{\"event_type\": \"registered\"}",
    b"\xef\xbb\xbf{}", b"{\"event_type\": \"registered\", \"event_type\": \"deregistered\"}",
    b"\x00\x00\x00\x01", b"NaN", b"{'single': 'quotes'}", None,
]
not_objects = st.sampled_from(NOT_OBJECTS).map(lambda v: ("not_an_object", b"0" * 16, v))

REGISTRATION_KINDS: dict[str, st.SearchStrategy[Case]] = {
    "raw_bytes": raw_bytes, "truncated_json": truncated(), "oversized_json": oversized(),
    "wrong_type": wrong_types(), "unicode": unicode_edges(), "hostile": hostile(),
    "not_an_object": not_objects,
}


def valid_payment() -> dict[str, Any]:
    return {"payment_id": str(uuid.uuid4()), "programme": "malang-2025", "period": "2025-12",
            "amount_idr": 16_800, "reference": "BPJS-TEST-1",
            "paid_at": "2025-12-10T10:00:00+07:00"}


PAYMENT_WRONG: dict[str, list[Any]] = {
    "payment_id": ["not-a-uuid", 7, None, []], "programme": NOT_TEXT + [""],
    "period": ["2025-13", "2025/12", 202512, None], "amount_idr": ["lots", -5, 1.5, None, [], {}],
    "reference": ["", "R" * 101, 5, None, []],
    "paid_at": ["2025-12-10T10:00:00", "tomorrow", "2025-12-32T10:00:00Z", None],
}


@st.composite
def bad_payments(draw: st.DrawFn) -> Case:
    kind = draw(st.sampled_from(["raw_bytes", "truncated_json", "wrong_type", "oversized_json",
                                 "not_an_object"]))
    payment = valid_payment()
    if kind == "raw_bytes":
        return kind, None, draw(st.binary(max_size=400))
    if kind == "truncated_json":
        text = json.dumps(payment).encode()
        return kind, None, text[:draw(st.integers(0, len(text) - 1))]
    if kind == "oversized_json":  # a reference far longer than 100 characters
        payment["reference"] = "R" * draw(st.integers(70_000, 150_000))
        return kind, None, json.dumps(payment).encode()
    if kind == "not_an_object":
        return kind, None, draw(st.sampled_from([b"[]", b"null", b"1", b"\"paid\"", b""]))
    field = draw(st.sampled_from(sorted(PAYMENT_WRONG)))
    if draw(st.booleans()):
        payment[field] = draw(st.sampled_from(PAYMENT_WRONG[field]))
    else:
        payment.pop(field)
    return kind, None, json.dumps(payment).encode()


def generate(strategy: st.SearchStrategy[Case], count: int, salt: int) -> list[Case]:
    """``count`` examples of a strategy, reproducibly from SEED (hypothesis drives it)."""
    found: list[Case] = []

    @seed(SEED + salt)
    @settings(max_examples=count, database=None, deadline=None, derandomize=False,
              suppress_health_check=list(HealthCheck))
    @given(strategy)
    def draw(case: Case) -> None:
        found.append(case)

    draw()
    return found[:count]


# --- publishing one batch and reading back ------------------------------------------------


async def publish_cases(settings_: Settings, topic: str,
                        cases: list[Case]) -> dict[tuple[int, int], Case]:
    """Publish every case; returns them by (partition, offset)."""
    producer = AIOKafkaProducer(**client_options(settings_), acks="all", linger_ms=5,
                                max_request_size=1024 * 1024)
    await producer.start()
    try:
        futures = [await producer.send(topic, key=key, value=value) for _, key, value in cases]
        metadata = await asyncio.gather(*futures)
    finally:
        await producer.stop()
    return {(m.partition, m.offset): case for m, case in zip(metadata, cases, strict=True)}


async def rejections_of(
    settings_: Settings, topic: str, placed: dict[tuple[int, int], Case]
) -> dict[tuple[int, int], RejectedEvent]:
    def ours(record: Any) -> bool:
        event = RejectedEvent.model_validate_json(record.value)
        return event.source_topic == topic and (event.partition, event.offset) in placed

    records = await collect(settings_, TOPIC_REJECTED, ours, want=len(placed), timeout=90)
    found = {}
    for record in records:
        event = RejectedEvent.model_validate_json(record.value)
        found[(event.partition, event.offset)] = event
    return found


async def ledger_counts(db: asyncpg.Pool) -> tuple[int, int, int]:
    row = await db.fetchrow(
        "SELECT (SELECT count(*) FROM ledger.contributions) AS c, "
        "(SELECT count(*) FROM ledger.transfers) AS t, "
        "(SELECT count(*) FROM ledger.contributions WHERE nik !~ '^[0-9]{16}$') AS odd")
    return row["c"], row["t"], row["odd"]


async def wait_booked(db: asyncpg.Pool, nik: str, within: float = 90) -> int:
    deadline = time.monotonic() + within
    count = 0
    while time.monotonic() < deadline:
        count = await db.fetchval("SELECT count(*) FROM ledger.contributions WHERE nik = $1", nik)
        if count >= 12:
            break
        await asyncio.sleep(0.3)
    return int(count)


def check(placed: dict[tuple[int, int], Case], found: dict[tuple[int, int], RejectedEvent],
          allowed: Callable[[str], bool]) -> tuple[Counter[str], list[str]]:
    codes: Counter[str] = Counter()
    problems = []
    for where, (kind, _key, value) in placed.items():
        event = found.get(where)
        shown = (value or b"")[:600]
        if event is None:
            problems.append(f"{kind} at {where} never reached the rejected topic: {shown!r}")
            continue
        if not event.errors:
            problems.append(f"{kind} at {where} rejected without an error: {shown!r}")
        for error in event.errors:
            codes[error.code] += 1
            if not allowed(error.code):
                problems.append(f"{kind} at {where}: code {error.code!r}: {shown!r}")
    return codes, problems


async def test_fuzzed_registrations_are_rejected_with_a_code_and_the_stream_flows(
    stack: ServiceProcesses, settings: Settings, db: asyncpg.Pool
) -> None:
    cases = [case for index, (name, strategy) in enumerate(sorted(REGISTRATION_KINDS.items()))
             for case in generate(strategy, PER_KIND, index)]
    by_kind = Counter(kind for kind, _, _ in cases)
    # hypothesis stops early once a finite space is exhausted: the count is what ran
    assert by_kind["not_an_object"] == min(PER_KIND, len(NOT_OBJECTS))
    assert set(by_kind) == set(REGISTRATION_KINDS) and min(by_kind.values()) > 0
    niks = sorted({nik for _, _, value in cases if (nik := _nik_in(value))})
    before = await ledger_counts(db)
    started = time.monotonic()
    placed = await publish_cases(settings, TOPIC_REGISTRATIONS, cases)
    good = registration()  # the stream keeps flowing: a valid one behind the fuzz is booked
    await publish(settings, TOPIC_REGISTRATIONS, [as_message(good)])
    booked = await wait_booked(db, good.worker.nik)
    found = await rejections_of(settings, TOPIC_REGISTRATIONS, placed)
    after = await ledger_counts(db)
    fuzz_booked = await db.fetchval(
        "SELECT count(*) FROM ledger.contributions WHERE nik = ANY($1::text[])", niks)
    codes, problems = check(placed, found,
                            lambda code: code in CATALOGUE and code != "internal_error")
    faults.record("fuzz.registrations", seed=SEED, cases=len(cases), per_kind_asked=PER_KIND,
                  by_kind=dict(by_kind), rejected=len(found),
                  codes=dict(codes), valid_after_fuzz_booked=booked,
                  fuzz_contributions_booked=fuzz_booked, problems=len(problems),
                  seconds=round(time.monotonic() - started, 1))
    assert not problems, "\n".join(problems[:20])
    assert booked == 12, "a valid registration behind the fuzz batch was not booked"
    assert fuzz_booked == 0, "a fuzz case was booked"
    assert after[2] == before[2] == 0, "a contribution with an impossible NIK is in the ledger"


def _nik_in(value: bytes | None) -> str | None:
    """The worker's NIK in a case, when it is one a contribution could be booked for."""
    try:
        event = json.loads(value or b"")
    except (ValueError, RecursionError):
        return None
    worker = event.get("worker") if isinstance(event, dict) else None
    nik = worker.get("nik") if isinstance(worker, dict) else None
    return nik if isinstance(nik, str) and nik.isascii() and nik.isdigit() else None


async def test_fuzzed_payments_are_dead_letters_with_a_code_and_change_nothing(
    stack: ServiceProcesses, settings: Settings, db: asyncpg.Pool
) -> None:
    cases = generate(bad_payments(), PER_KIND * 3, 100)
    payments_before = await _payments_state(db)
    started = time.monotonic()
    placed = await publish_cases(settings, TOPIC_PAYMENTS, cases)
    # the stream keeps flowing: a valid payment behind the fuzz (for a month without a bill)
    # is recorded, as a discrepancy
    good = {**valid_payment(), "programme": f"fuzz-{uuid.uuid4().hex[:8]}",
            "reference": f"BPJS-{uuid.uuid4().hex[:8]}"}
    await publish(settings, TOPIC_PAYMENTS, [(None, json.dumps(good).encode())])
    await handled(settings, PAYMENTS_STAGE)
    found = {(r["partition"], r["offset"]): r["reason"] for r in await db.fetch(
        """SELECT partition, "offset", reason FROM ledger.dead_letters
            WHERE service = 'ledger' AND topic = $1""", TOPIC_PAYMENTS)}
    codes: Counter[str] = Counter()
    problems = []
    for where, (kind, _key, value) in placed.items():
        reason = found.get(where)
        codes[str(reason)] += 1
        if reason != "malformed_payment":
            problems.append(f"{kind} at {where}: {reason or 'no dead letter'}: "
                            f"{(value or b'')[:600]!r}")
    payments_after = await _payments_state(db)
    good_recorded = await db.fetchval(
        "SELECT count(*) FROM ledger.payments p JOIN ledger.discrepancies d USING (payment_id) "
        "WHERE p.payment_id = $1 AND d.kind = 'unknown_bill'", uuid.UUID(good["payment_id"]))
    faults.record("fuzz.payments", seed=SEED, cases=len(cases),
                  by_kind=dict(Counter(kind for kind, _, _ in cases)),
                  dead_letters=sum(1 for where in placed if where in found),
                  codes=dict(codes), problems=len(problems),
                  valid_after_fuzz_recorded=good_recorded,
                  seconds=round(time.monotonic() - started, 1))
    assert not problems, "\n".join(problems[:20])
    assert good_recorded == 1, "a valid payment behind the fuzz batch was not recorded"
    expected = [payments_before[0] + 1, payments_before[1] + 1, payments_before[2]]
    assert payments_after == expected, "a fuzzed payment was recorded"


async def _payments_state(db: asyncpg.Pool) -> list[int]:
    counts = []
    for table in ("payments", "discrepancies"):
        exists = await db.fetchval("SELECT to_regclass($1) IS NOT NULL", f"ledger.{table}")
        counts.append(await db.fetchval(f"SELECT count(*) FROM ledger.{table}") if exists else -1)
    settled = await db.fetchval("SELECT count(*) FROM ledger.transfers WHERE kind = 'settlement'")
    return [*counts, settled]
