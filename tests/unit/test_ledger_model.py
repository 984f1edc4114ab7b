"""The booking rules without a database: what a batch books, holds, refuses, cancels and
credits, and the properties every stream keeps (hypothesis): the ceiling, one payer per
worker-month, a journal that balances, and outcomes that do not depend on how a stream is cut
into batches or on the order in which a registration and its cancellation arrive."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from services.ledger.accounts import BPJS_CREDIT, BPJS_PAYABLE, PREMIUM_EXPENSE, postings
from services.ledger.model import Arrival, HoldReason, Refusal, Rejection
from tests.support.ledger_model import PREMIUM, MemoryLedger, cancelled, due, month

P = PREMIUM[0]
KEY = ("p1", "APBD")


def test_a_month_that_fits_is_booked_and_the_rest_waits_in_order() -> None:
    ledger = MemoryLedger({"p1": 2 * P})
    decided = ledger.book(due(month("a", "2026-01"), month("b", "2026-01"),
                              month("c", "2026-01")))
    assert [m.nik for m in decided.booked] == ["a", "b"]
    assert [(m.nik, r) for m, r in decided.held] == [("c", HoldReason.BUDGET_EXCEEDED)]
    assert ledger.facts.room[KEY] == 0


def test_a_replay_changes_nothing_and_another_schedule_is_refused() -> None:
    ledger = MemoryLedger({"p1": 10 * P})
    first = month("a", "2026-01", schedule="one")
    ledger.book(due(first))
    replay = ledger.book(due(first))
    assert not replay.steps and not replay.refused
    other = ledger.book(due(month("a", "2026-01", schedule="two")))
    assert [r for _, r in other.refused] == [Refusal.BOOKED_BY_ANOTHER_SCHEDULE]


def test_a_second_payer_of_a_month_is_a_duplicate() -> None:
    ledger = MemoryLedger({"p1": 10 * P, "p2": 10 * P})
    ledger.book(due(month("a", "2026-01")))
    decided = ledger.book(due(month("a", "2026-01", programme="p2", schedule="p2")))
    assert len(decided.duplicates) == 1 and not decided.booked


def test_an_amount_that_is_not_the_premium_is_refused() -> None:
    ledger = MemoryLedger({"p1": 10 * P})
    decided = ledger.book(due(month("a", "2026-01", amount=8_400 + 6_800)))
    assert [r for _, r in decided.refused] == [Refusal.AMOUNT_NOT_PROGRAMME_PREMIUM]


def test_a_cancelled_unbilled_month_frees_room_for_the_oldest_waiting_month_at_once() -> None:
    ledger = MemoryLedger({"p1": P})
    a, b, c = month("a", "2026-01"), month("b", "2026-01"), month("c", "2026-01")
    ledger.book(due(a, b))
    decided = ledger.book(cancelled(a) + due(c))
    assert [m.nik for m in decided.released] == ["b"]
    assert [m.nik for m, _ in decided.held] == ["c"]
    assert ledger.waiting() == {("c", "2026-01", 0)}


def test_a_cancelled_billed_month_is_a_credit_and_frees_no_room() -> None:
    ledger = MemoryLedger({"p1": P})
    a, b = month("a", "2026-01"), month("b", "2026-01")
    ledger.book(due(a))
    ledger.bill("p1")
    decided = ledger.book(cancelled(a) + due(b))
    assert [x.month.nik for x in decided.credited] == ["a"] and not decided.reversed
    assert [m.nik for m, _ in decided.held] == ["b"]
    assert ledger.credits() == P and ledger.facts.room[KEY] == 0


def test_a_cancellation_that_arrives_first_keeps_its_months_from_being_booked() -> None:
    ledger = MemoryLedger({"p1": 10 * P})
    a = month("a", "2026-01")
    first = ledger.book(cancelled(a))
    assert first.tombstones == [a]
    later = ledger.book(due(a))
    assert later.cancelled_early == [a] and not later.booked
    assert ledger.facts.room[KEY] == 10 * P


def test_a_later_generation_waits_for_the_earlier_ones_cancellation() -> None:
    ledger = MemoryLedger({"p1": 10 * P, "p2": 10 * P})
    g0 = month("a", "2026-01", schedule="first")
    g1 = month("a", "2026-01", generation=1, programme="p2", schedule="again")
    ledger.book(due(g0))
    waiting = ledger.book(due(g1))
    assert [r for _, r in waiting.held] == [HoldReason.AWAITING_CANCELLATION]
    done = ledger.book(cancelled(g0))
    assert done.released == [g1]
    assert ledger.active_months() == {("a", "2026-01", 1)}


def test_a_budget_raise_books_the_waiting_months_in_order() -> None:
    ledger = MemoryLedger({"p1": 0})
    ledger.book(due(*(month(n, "2026-01") for n in "abc")))
    decided = ledger.raise_budget("p1", 2 * P)
    assert [m.nik for m in decided.released] == ["a", "b"]
    assert ledger.waiting() == {("c", "2026-01", 0)}


# --- a rejection by BPJS that came before the months -------------------------------------

REJECTED_AT = datetime(2025, 12, 5, tzinfo=UTC)
BEFORE, AFTER = REJECTED_AT - timedelta(days=3), REJECTED_AT + timedelta(days=2)


def rejected(*niks: str, programme: str = "p1") -> dict[tuple[str, str], Rejection]:
    """The standing rejections of ``niks`` (BPJS's code R02)."""
    return {(programme, nik): Rejection(uuid.uuid5(uuid.NAMESPACE_OID, f"verdict:{nik}"),
                                        REJECTED_AT, "R02") for nik in niks}


def test_months_of_a_registration_bpjs_rejected_before_they_arrived_are_cancelled() -> None:
    ledger = MemoryLedger({"p1": 10 * P})
    ledger.facts.rejections = rejected("a")
    a1, a2 = month("a", "2026-01", occurred_at=BEFORE), month("a", "2026-02", occurred_at=BEFORE)
    b = month("b", "2026-01", occurred_at=BEFORE)
    decided = ledger.book(due(a1, a2, b))
    assert decided.booked == [b]
    assert decided.cancelled_early == [a1, a2]
    assert [(m, r.reason_code) for m, r in decided.bpjs_rejected] == [(a1, "R02"), (a2, "R02")]
    assert ledger.facts.room[KEY] == 9 * P
    again = ledger.book(due(a1, a2))  # redelivered: decided already
    assert not again.steps and not again.cancelled_early and not again.bpjs_rejected


def test_the_opds_resubmission_after_the_rejection_is_booked() -> None:
    ledger = MemoryLedger({"p1": 10 * P})
    ledger.facts.rejections = rejected("a")
    ledger.book(due(month("a", "2026-01", occurred_at=BEFORE, schedule="first")))
    resent = month("a", "2026-01", generation=1, occurred_at=AFTER, schedule="again")
    decided = ledger.book(due(resent))
    assert decided.booked == [resent] and not decided.bpjs_rejected
    assert ledger.active_months() == {("a", "2026-01", 1)}


def test_a_month_of_a_worker_bpjs_rejected_first_is_not_held_for_budget_either() -> None:
    ledger = MemoryLedger({"p1": 0})
    ledger.facts.rejections = rejected("a")
    a, b = month("a", "2026-01", occurred_at=BEFORE), month("b", "2026-01", occurred_at=BEFORE)
    decided = ledger.book(due(a, b))
    assert [m for m, _ in decided.held] == [b] and decided.cancelled_early == [a]
    assert ledger.raise_budget("p1", 2 * P).released == [b]
    assert ledger.facts.room[KEY] == P


def test_a_held_month_of_a_worker_bpjs_rejected_since_is_not_released() -> None:
    ledger = MemoryLedger({"p1": 0})
    a, b = month("a", "2026-01", occurred_at=BEFORE), month("b", "2026-01", occurred_at=BEFORE)
    ledger.book(due(a, b))  # both wait for budget
    ledger.facts.rejections = rejected("a")
    decided = ledger.raise_budget("p1", P)
    assert decided.released == [b]
    assert [m for m, _ in decided.held_cancelled] == [a]
    assert [m for m, _ in decided.bpjs_rejected] == [a]
    assert not ledger.waiting() and ledger.facts.room[KEY] == 0


# --- properties -------------------------------------------------------------------------

PERIODS = ["2026-01", "2026-02", "2026-03"]


@st.composite
def streams(draw: st.DrawFn) -> list[Arrival]:
    """What validators send for a few workers, worker by worker in their own order:
    enrolments (generation by generation), some cancelled from some month on; interleaved
    across workers at random."""
    per_worker: list[list[list[Arrival]]] = []
    for w in range(draw(st.integers(1, 5))):
        nik = f"w{w}"
        events: list[list[Arrival]] = []
        generation = {p: 0 for p in PERIODS}
        open_months: list[str] = []
        for round_ in range(draw(st.integers(1, 3))):
            free = [p for p in PERIODS if p not in open_months]
            if free:
                programme = draw(st.sampled_from(["p1", "p2"]))
                months = [month(nik, p, generation=generation[p], programme=programme,
                                schedule=f"{nik}:{round_}:{p}:{generation[p]}") for p in free]
                events.append(due(*months))
                open_months.extend(free)
                enrolled = months
            if draw(st.booleans()):
                start = draw(st.integers(0, len(PERIODS) - 1))
                stopped = [m for m in enrolled if m.period >= PERIODS[start]
                           and m.period in open_months]
                if stopped:
                    events.append(cancelled(*stopped))
                    for m in stopped:
                        open_months.remove(m.period)
                        generation[m.period] += 1
        per_worker.append(events)
    stream: list[Arrival] = []
    while any(per_worker):
        queue = draw(st.sampled_from([q for q in per_worker if q]))
        stream.extend(queue.pop(0))
    return stream


def cut(stream: list[Arrival], seed: int) -> list[list[Arrival]]:
    rng = random.Random(seed)
    batches, i = [], 0
    while i < len(stream):
        size = rng.randint(1, 7)
        batches.append(stream[i:i + size])
        i += size
    return batches


def state(ledger: MemoryLedger) -> tuple[object, ...]:
    return (ledger.active_months(), ledger.waiting(), ledger.credits(),
            sorted(ledger.facts.room.items()))


@settings(max_examples=300, deadline=None)
@given(streams(), st.integers(0, 6), st.integers(0, 10_000))
def test_the_ceiling_one_payer_and_the_journal_hold_for_every_stream(
    stream: list[Arrival], budget_months: int, seed: int
) -> None:
    ledger = MemoryLedger({"p1": budget_months * P, "p2": 2 * P})
    rng = random.Random(seed)
    for batch in cut(stream, seed):
        decided = ledger.book(batch)
        if rng.random() < 0.3:
            ledger.bill(rng.choice(["p1", "p2"]))
        assert all(room >= 0 for room in ledger.facts.room.values())
        payers: dict[tuple[str, str], int] = {}
        for booked in ledger.facts.booked.values():
            if not booked.cancelled:
                key = booked.month.worker_month
                payers[key] = payers.get(key, 0) + 1
        assert all(n == 1 for n in payers.values())
        moved: dict[tuple[str, str], int] = {}
        journal = postings(decided)
        for t in journal.transfers:
            programme = t.credit_account.rsplit(":", 1)[1]
            key = (programme, "APBD")
            if t.kind == "accrual":
                assert t.debit_account == PREMIUM_EXPENSE.code(programme)
                moved[key] = moved.get(key, 0) + t.amount_idr
            elif t.debit_account == BPJS_PAYABLE.code(programme):
                moved[key] = moved.get(key, 0) - t.amount_idr
            else:
                assert t.debit_account == BPJS_CREDIT.code(programme)
        assert {k: v for k, v in moved.items() if v} == {
            k: v for k, v in decided.room_used.items() if v}
        # every month booked or cancelled is carried by one posting of its allocation, whose
        # amount is the sum of the months it carries
        carried: dict[object, int] = {}
        for carrying, months in (
                (journal.booking, (*decided.booked, *decided.released)),
                (journal.cancellation, [b.month for b in (*decided.reversed, *decided.credited)])):
            for m in months:
                posting = carrying[m.contribution_id]
                carried[posting] = carried.get(posting, 0) + m.amount_idr
        assert carried == {t.transfer_id: t.amount_idr for t in journal.transfers}
    for key in ledger.allocated:
        live = sum(b.month.amount_idr for b in ledger.facts.booked.values()
                   if b.month.allocation == key and not b.cancelled)
        credit = sum(b.month.amount_idr for b in ledger.facts.booked.values()
                     if b.month.allocation == key and b.cancelled and b.billed)
        assert ledger.committed(key) == live + credit


@settings(max_examples=300, deadline=None)
@given(streams(), st.integers(0, 6), st.integers(0, 10_000), st.integers(0, 10_000))
def test_the_outcome_does_not_depend_on_how_the_stream_is_cut_into_batches(
    stream: list[Arrival], budget_months: int, one: int, other: int
) -> None:
    budgets = {"p1": budget_months * P, "p2": 2 * P}
    whole = MemoryLedger(budgets)
    whole.book(stream)
    assert state(whole) == state(run_cut(budgets, stream, one))
    assert state(whole) == state(run_cut(budgets, stream, other))


def run_cut(budgets: dict[str, int], stream: list[Arrival], seed: int) -> MemoryLedger:
    ledger = MemoryLedger(budgets)
    for batch in cut(stream, seed):
        ledger.book(batch)
    return ledger


@settings(max_examples=300, deadline=None)
@given(streams(), st.integers(0, 10_000))
def test_with_room_for_all_the_order_of_arrival_does_not_change_what_is_booked(
    stream: list[Arrival], seed: int
) -> None:
    budgets = {"p1": 100 * P, "p2": 100 * P}
    in_order = MemoryLedger(budgets)
    in_order.book(stream)
    shuffled = list(stream)
    random.Random(seed).shuffle(shuffled)
    any_order = run_cut(budgets, shuffled, seed)
    assert in_order.active_months() == any_order.active_months()
    assert in_order.facts.room == any_order.facts.room
    assert not any_order.waiting()


def test_ranked_workers_are_booked_before_unranked_ones_whatever_the_hold_order() -> None:
    ledger = MemoryLedger({"p1": 0})
    ledger.facts.ranks = {("p1", "c"): 1, ("p1", "a"): 2}
    ledger.book(due(*(month(n, "2026-01") for n in "abcd")))
    decided = ledger.raise_budget("p1", 3 * P)
    assert [m.nik for m in decided.released] == ["c", "a", "b"]
    assert ledger.waiting() == {("d", "2026-01", 0)}


@settings(max_examples=200, deadline=None)
@given(st.permutations(list("abcdef")), st.lists(st.sampled_from(list("abcdef")), unique=True),
       st.integers(0, 6), st.integers(0, 10_000))
def test_whatever_the_arrival_order_and_batches_the_waiting_months_are_booked_by_rank(
    arrival: list[str], ranked: list[str], room: int, seed: int
) -> None:
    """Held months are booked by rank (ranked workers first, in rank order), then in the
    order they were held, however the arrivals were cut into batches."""
    ledger = MemoryLedger({"p1": 0})
    ledger.facts.ranks = {("p1", nik): place for place, nik in enumerate(ranked, 1)}
    for batch in cut(due(*(month(n, "2026-01") for n in arrival)), seed):
        ledger.book(batch)
    decided = ledger.raise_budget("p1", room * P)
    expected = ranked + [n for n in arrival if n not in ranked]
    assert [m.nik for m in decided.released] == expected[:room]
    assert ledger.waiting() == {(n, "2026-01", 0) for n in expected[room:]}


@settings(max_examples=200, deadline=None)
@given(streams(), st.integers(0, 6), st.integers(0, 10_000),
       st.sets(st.integers(0, 4), max_size=3))
def test_a_worker_bpjs_rejected_first_has_no_month_booked_or_waiting_whatever_the_batches(
    stream: list[Arrival], budget_months: int, seed: int, workers: set[int]
) -> None:
    """Months of registrations a standing rejection judged are never booked nor held, however
    the stream is cut into batches; the other workers' outcome does not depend on the cut."""
    budgets = {"p1": budget_months * P, "p2": 2 * P}
    rejections = {**rejected(*(f"w{w}" for w in workers)),
                  **rejected(*(f"w{w}" for w in workers), programme="p2")}
    cut_up = MemoryLedger(budgets)
    cut_up.facts.rejections = rejections
    for batch in cut(stream, seed):
        cut_up.book(batch)
        assert all(room >= 0 for room in cut_up.facts.room.values())
    niks = {f"w{w}" for w in workers}
    assert not {m for m in cut_up.active_months() | cut_up.waiting() if m[0] in niks}
    whole = MemoryLedger(budgets)
    whole.facts.rejections = rejections
    whole.book(stream)
    assert state(whole) == state(cut_up)
