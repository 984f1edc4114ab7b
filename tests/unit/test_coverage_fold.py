"""The coverage fold over iuran.ledger.v1 events: figures computed by hand, what the
booking model decided (events_of a plan, through the v1 contract), replays and order."""

from __future__ import annotations

import random
import uuid
from dataclasses import replace
from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.events import LedgerBillSettled, LedgerEvent, LedgerWorkerMonths
from services.ledger.model import Arrival, Month
from services.ledger.outbox import MAX_EVENT_BYTES, events_of, settled_events
from tests.support.coverage import MemoryTotals
from tests.support.ledger_model import PREMIUM, MemoryLedger, cancelled, due, month

P = PREMIUM[0]
AT = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
A, B, C = "3573010101900001", "3573020202900002", "3573030303900003"


def event(outbox_id: int, *workers: LedgerWorkerMonths, programme: str = "p1",
          settled: tuple[LedgerBillSettled, ...] = ()) -> LedgerEvent:
    return LedgerEvent(outbox_id=outbox_id, programme=programme, recorded_at=AT,
                       workers=list(workers), bills_settled=list(settled))


def worker(nik: str, opd: str = "DISNAKER", kecamatan: str = "Klojen",
           **periods: list[str]) -> LedgerWorkerMonths:
    return LedgerWorkerMonths(nik=nik, opd_code=opd, category="ojek_online",
                              kecamatan=kecamatan, amount_idr=P, **periods)


def test_a_sequence_of_events_folds_to_the_figures_counted_by_hand() -> None:
    totals = MemoryTotals()
    for e in [
        event(1, worker(A, booked=["2026-01", "2026-02", "2026-03"]),
              worker(B, opd="DISHUB", kecamatan="Sukun", booked=["2026-01"],
                     held=["2026-02", "2026-03"]),
              worker(C, held=["2026-01"])),
        # A leaves from 2026-02 (one month billed: a credit); B's held months are booked
        event(2, worker(A, cancelled=["2026-03"], credited=["2026-02"]),
              worker(B, opd="DISHUB", kecamatan="Sukun", booked=["2026-02", "2026-03"],
                     released=["2026-02", "2026-03"])),
        # C's hold is cancelled; a bill is paid
        event(3, worker(C, held_cancelled=["2026-01"]),
              settled=(LedgerBillSettled(bill_id=uuid.uuid4(), period="2026-01",
                                         amount_idr=2 * P),)),
    ]:
        totals.apply([e])
    # active workers, months booked, rupiah, workers awaiting, months held, rupiah held
    assert totals.tally("p1") == [2, 4, 4 * P, 0, 0, 0]
    assert totals.tally("p1", "by_opd", "DISNAKER") == [1, 1, P, 0, 0, 0]
    assert totals.tally("p1", "by_opd", "DISHUB") == [1, 3, 3 * P, 0, 0, 0]
    assert totals.tally("p1", "by_kecamatan", "Klojen") == [1, 1, P, 0, 0, 0]
    assert totals.tally("p1", "by_category", "ojek_online") == [2, 4, 4 * P, 0, 0, 0]
    booked_by_month: dict[str, int] = {}
    for (_, period, *_), row in totals.months.items():
        booked_by_month[period] = booked_by_month.get(period, 0) + row[0]
    assert booked_by_month == {"2026-01": 2, "2026-02": 1, "2026-03": 1}
    assert totals.paid == {"p1": [2 * P, 1]}

    # half-way: after the first event only
    first = MemoryTotals()
    first.apply([event(1, worker(A, booked=["2026-01", "2026-02", "2026-03"]),
                       worker(B, opd="DISHUB", kecamatan="Sukun", booked=["2026-01"],
                              held=["2026-02", "2026-03"]),
                       worker(C, held=["2026-01"]))])
    assert first.tally("p1") == [2, 4, 4 * P, 2, 3, 3 * P]


def test_an_event_applied_twice_or_sent_again_changes_nothing() -> None:
    once, twice = MemoryTotals(), MemoryTotals()
    first = event(7, worker(A, booked=["2026-01"]))
    second = event(8, worker(B, held=["2026-01"]))
    once.apply([first, second])
    assert twice.apply([first, first]) == [first]
    twice.apply([second, first])
    assert twice.apply([second]) == []
    assert (once.months, once.workers, once.groups) == (
        twice.months, twice.workers, twice.groups)


def test_the_events_of_a_plan_go_through_the_v1_contract_unchanged() -> None:
    ledger = MemoryLedger({"p1": 2 * P})
    a = [replace(month(A, p), opd_code="DISNAKER", category="linmas", kecamatan="Klojen")
         for p in ("2026-01", "2026-02")]
    b = [replace(month(B, p), opd_code="DISHUB", category="umkm", kecamatan="Sukun")
         for p in ("2026-01",)]
    ledger.book(due(*a, *b))  # A booked, B held
    decided = ledger.book(cancelled(a[1]))  # A's 2026-02 reversed, B's month released
    events = events_of(decided, recorded_at=AT)
    assert [e.outbox_id for e in events] == [1]
    for e in events:
        assert LedgerEvent.model_validate_json(e.model_dump_json(exclude_defaults=True)) == e
    by_nik = {w.nik: w for w in events[0].workers}
    assert by_nik[A].cancelled == ["2026-02"]
    assert (by_nik[B].booked, by_nik[B].released) == (["2026-01"], ["2026-01"])
    assert (by_nik[B].opd_code, by_nik[B].category, by_nik[B].kecamatan) == (
        "DISHUB", "umkm", "Sukun")
    assert events_of(ledger.book(due(*a[:1])), recorded_at=AT) == []  # a replay: no event


def test_a_very_large_plan_is_cut_into_events_under_the_size_limit() -> None:
    ledger = MemoryLedger({"p1": 10**12})
    months = [month(f"3573{n:012d}", f"2026-{m:02d}") for n in range(4000)
              for m in range(1, 13)]
    events = events_of(ledger.book(due(*months)), recorded_at=AT)
    assert len(events) > 1
    assert all(len(e.model_dump_json(exclude_defaults=True)) < MAX_EVENT_BYTES for e in events)
    assert sum(len(w.booked) for e in events for w in e.workers) == len(months)


def test_settled_bills_are_one_event_per_programme() -> None:
    one, two = uuid.uuid4(), uuid.uuid4()
    events = settled_events([("p1", one, "2026-01", P), ("p2", two, "2026-01", 2 * P),
                             ("p1", two, "2026-02", P)], recorded_at=AT)
    assert [(e.programme, len(e.bills_settled)) for e in events] == [("p1", 2), ("p2", 1)]


# --- the fold equals what the booking model holds, for every stream -----------------------

PERIODS = ["2026-01", "2026-02", "2026-03"]
GROUPS = [("DISNAKER", "linmas", "Klojen"), ("DISHUB", "umkm", "Sukun")]


@st.composite
def streams(draw: st.DrawFn) -> list[list[Arrival]]:
    """Batches of enrolments and cancellations of a few workers (each in an OPD, category
    and kecamatan of its own), cut at random."""
    arrivals: list[Arrival] = []
    for w in range(draw(st.integers(1, 5))):
        nik = f"35730{w:011d}"
        opd, category, kecamatan = draw(st.sampled_from(GROUPS))
        months: list[Month] = []
        for p in PERIODS:
            m = month(nik, p, programme=draw(st.sampled_from(["p1", "p2"])),
                      schedule=f"{nik}:{p}")
            months.append(replace(m, opd_code=opd, category=category, kecamatan=kecamatan))
        arrivals.extend(due(*months))
        if draw(st.booleans()):
            arrivals.extend(cancelled(*months[draw(st.integers(0, 2)):]))
    order = draw(st.permutations(range(len(arrivals))))
    shuffled = [arrivals[i] for i in order]
    batches, i = [], 0
    while i < len(shuffled):
        size = draw(st.integers(1, 4))
        batches.append(shuffled[i:i + size])
        i += size
    return batches


def figures(ledger: MemoryLedger, programme: str, dimension: str, key: str) -> list[int]:
    def of(m: Month) -> bool:
        return m.programme == programme and (dimension == "total" or key == {
            "by_opd": m.opd_code, "by_category": m.category,
            "by_kecamatan": m.kecamatan}[dimension])

    booked = [b.month for b in ledger.facts.booked.values() if not b.cancelled and of(b.month)]
    held = [h.month for h in ledger.facts.held.values() if h.waiting and of(h.month)]
    return [len({m.nik for m in booked}), len(booked), sum(m.amount_idr for m in booked),
            len({m.nik for m in held}), len(held), sum(m.amount_idr for m in held)]


@settings(max_examples=200, deadline=None)
@given(streams(), st.integers(0, 6), st.integers(0, 10_000))
def test_the_fold_of_the_events_equals_what_the_ledger_holds(
    batches: list[list[Arrival]], budget_months: int, seed: int
) -> None:
    ledger = MemoryLedger({"p1": budget_months * P, "p2": 2 * P})
    rng = random.Random(seed)
    sent: list[LedgerEvent] = []
    for batch in batches:
        if rng.random() < 0.3:
            ledger.bill(rng.choice(["p1", "p2"]))
        for e in events_of(ledger.book(batch), recorded_at=AT):
            sent.append(e.model_copy(update={"outbox_id": len(sent) + 1}))
    if rng.random() < 0.5:
        sent.extend(ledger_plan_events(ledger, "p1", len(sent)))
    delivered = sent + rng.sample(sent, k=len(sent) // 2)  # at least once: some twice
    rng.shuffle(delivered)
    totals = MemoryTotals()
    while delivered:  # in batches of the projector's, cut at random
        size = rng.randint(1, 4)
        totals.apply(delivered[:size])
        delivered = delivered[size:]
    for programme in ("p1", "p2"):
        assert totals.tally(programme) == figures(ledger, programme, "total", "")
        for opd, category, kecamatan in GROUPS:
            for dimension, key in (("by_opd", opd), ("by_category", category),
                                   ("by_kecamatan", kecamatan)):
                assert totals.tally(programme, dimension, key) == figures(
                    ledger, programme, dimension, key)


def ledger_plan_events(ledger: MemoryLedger, programme: str, sent: int) -> list[LedgerEvent]:
    """A budget raise: the held months that fit are released, as events."""
    events = events_of(ledger.raise_budget(programme, 3 * P), recorded_at=AT)
    return [e.model_copy(update={"outbox_id": sent + n}) for n, e in enumerate(events, 1)]


def test_the_latest_verdict_of_a_batch_stands_and_moves_active_workers_between_bpjs_figures(
) -> None:
    from datetime import timedelta

    from schemas.events import LedgerBpjsVerdict
    from services.domain.coverage_fold import bpjs_group_deltas, deltas

    later = AT + timedelta(days=1)
    found = deltas([
        LedgerEvent(outbox_id=7, programme="p1", recorded_at=AT, bpjs_verdicts=[
            LedgerBpjsVerdict(nik=A, status="verified", verified_at=later)]),
        LedgerEvent(outbox_id=9, programme="p1", recorded_at=AT, bpjs_verdicts=[
            LedgerBpjsVerdict(nik=A, status="rejected", verified_at=AT)])])
    assert found.verdicts == {("p1", int(A)): (later, 7, "verified")}
    total = ("p1", "total", "")
    # A: active before and after, verdict none -> verified; B: booked now, verified before;
    # C: cancelled now, no verdict; a rejected worker counts in neither figure
    months = {(*total, int(A)): (3, 3), (*total, int(B)): (0, 3), (*total, int(C)): (3, 0),
              ("p1", "by_opd", "DINSOS", int(C)): (3, 3)}
    before = {("p1", int(B)): "verified", ("p1", int(C)): "rejected"}
    after = {("p1", int(A)): "verified"}
    assert bpjs_group_deltas(months, before, after) == {total: [2, -1]}
