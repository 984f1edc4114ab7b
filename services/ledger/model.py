"""The ledger's booking rules, as plain Python over plain values.

:func:`plan` takes a batch of arrivals (the months of due and cancelled contribution
schedules, in the order they were consumed) and the facts the ledger holds about them, and
decides for every month what the ledger does. Nothing here reads or writes a database: the
adapter (:mod:`services.ledger.book`) loads :class:`Facts`, calls :func:`plan` and writes the
:class:`Plan` in one transaction; the database only refuses what can never be true.

The rules, in the order they are applied to a month that is **due**:

1. A month the ledger already took (booked, held, refused or found a duplicate) under the
   same schedule is a replay: nothing changes. Under another schedule it is refused
   (``booked_by_another_schedule`` / ``held_for_another_schedule``).
2. A month whose cancellation arrived first (a *tombstone*) is never booked; nor is a month
   of a registration that BPJS's standing rejection of the worker judged (it occurred at or
   before the verdict, :attr:`Facts.rejections`): it is cancelled on arrival as if the
   rejection's cancellation had come first. The OPD's resubmission after the rejection is
   booked.
3. A month whose amount is not its programme's premium in force that month is refused
   (``amount_not_programme_premium``).
4. A month another enrolment of the worker pays (it is *active*) is a duplicate attempt —
   unless the active one is of an earlier generation: then this month waits for that
   generation's cancellation, which the validator always sends (``awaiting_cancellation``).
5. Without a budget allocation the month is held (``no_allocation``); while older months of
   the allocation wait for room, or when the month does not fit in the room left, it is held
   (``budget_exceeded``): held months are booked in the order they arrived — except that the
   months of workers a renewal ranked (:attr:`Facts.ranks`, the next year's priority order)
   wait before every unranked month, lower ranks first.
6. Otherwise it is booked: the allocation's room shrinks by its amount.

A month that is **cancelled**:

* booked and not yet billed: the booking is reversed and its amount is room again;
* booked and already billed (or paid): it becomes a *credit* at BPJS. The money is at BPJS,
  so the room is not freed (cash out of an allocation never exceeds it);
* held: the hold is cancelled and never booked;
* not seen yet: a tombstone is kept, so the month is never booked when it arrives.

Whenever room is freed or a month becomes free, the months waiting for it are released in
the order they wait in (rank, then the order they were held), in the same batch; a held
month of a registration a standing BPJS rejection judged is cancelled instead of released.
"""

from __future__ import annotations

from bisect import insort
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from enum import StrEnum
from typing import Literal
from uuid import UUID

Allocation = tuple[str, str]  # (programme, funding source)
WorkerMonth = tuple[str, str]  # (NIK, period)
UNRANKED = 2**62  # the place of a held month whose worker no renewal ranked: after the ranked


class HoldReason(StrEnum):
    BUDGET_EXCEEDED = "budget_exceeded"
    NO_ALLOCATION = "no_allocation"
    AWAITING_CANCELLATION = "awaiting_cancellation"


class Refusal(StrEnum):
    BOOKED_BY_ANOTHER_SCHEDULE = "booked_by_another_schedule"
    HELD_FOR_ANOTHER_SCHEDULE = "held_for_another_schedule"
    AMOUNT_NOT_PROGRAMME_PREMIUM = "amount_not_programme_premium"


@dataclass(frozen=True, slots=True)
class Month:
    """One worker-month of a contribution schedule, with everything the ledger records."""

    contribution_id: UUID
    nik: str
    period: str
    generation: int
    programme: str
    funding_source: str
    amount_idr: int
    jkk_idr: int
    jkm_idr: int
    schedule_id: UUID
    registration_event_id: UUID
    opd_code: str = ""
    category: str = ""
    kecamatan: str = ""
    due_date: date | None = None
    occurred_at: datetime | None = None
    # the keys the rules look months up by, set once
    allocation: Allocation = field(init=False, repr=False, compare=False)
    worker_month: WorkerMonth = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "allocation", (self.programme, self.funding_source))
        object.__setattr__(self, "worker_month", (self.nik, self.period))


@dataclass(frozen=True, slots=True)
class Arrival:
    """A month as it arrives in a batch: due (to be paid) or cancelled."""

    kind: Literal["due", "cancelled"]
    month: Month


@dataclass(frozen=True, slots=True)
class Booked:
    """A month the ledger booked: still active, or cancelled; billed or not."""

    month: Month
    cancelled: bool = False
    billed: bool = False


@dataclass(frozen=True, slots=True)
class Held:
    """A month the ledger holds; ``waiting`` until it is booked, cancelled or a duplicate."""

    month: Month
    reason: HoldReason
    seq: int  # the order in which months were held
    waiting: bool = True


@dataclass(frozen=True, slots=True)
class Rejection:
    """A worker's standing verdict at BPJS in a programme, when it is a rejection."""

    verification_id: UUID
    verified_at: datetime
    reason_code: str = ""

    def covers(self, month: Month) -> bool:
        """The month is of a registration BPJS judged: one that occurred at or before the
        verdict (or whose time is not known), not the OPD's resubmission after it."""
        return month.occurred_at is None or month.occurred_at <= self.verified_at


@dataclass
class Facts:
    """What the ledger holds about the months of a batch (and the allocations they touch)."""

    room: dict[Allocation, int] = field(default_factory=dict)  # allocated - committed
    # per programme, its dated rates (effective from a period on) as (monthly, jkk, jkm),
    # oldest first
    premiums: dict[str, list[tuple[str, tuple[int, int, int]]]] = field(default_factory=dict)
    booked: dict[UUID, Booked] = field(default_factory=dict)
    active: dict[WorkerMonth, UUID] = field(default_factory=dict)
    held: dict[UUID, Held] = field(default_factory=dict)  # the batch's ids and every waiting one
    tombstones: dict[UUID, Month] = field(default_factory=dict)
    decided: set[UUID] = field(default_factory=set)  # found a duplicate before
    next_hold_seq: int = 1
    # (programme, nik) -> the worker's place in a renewal's priority order (1 first): its held
    # months wait before those of workers without one, lower places first, then in hold order.
    ranks: dict[tuple[str, str], int] = field(default_factory=dict)
    # (programme, nik) -> the worker's standing verdict at BPJS, when it is a rejection
    rejections: dict[tuple[str, str], Rejection] = field(default_factory=dict)


@dataclass
class Plan:
    """What one batch does, in the order the ledger must write it.

    ``steps`` interleaves bookings and cancellations as they were decided: a month can be
    cancelled and booked again (a later generation) within one batch."""

    steps: list[tuple[str, object]] = field(default_factory=list)
    booked: list[Month] = field(default_factory=list)
    released: list[Month] = field(default_factory=list)  # held before, booked now
    held: list[tuple[Month, HoldReason]] = field(default_factory=list)
    duplicates: list[tuple[Month, UUID]] = field(default_factory=list)  # (month, active id)
    held_duplicates: list[tuple[Month, UUID]] = field(default_factory=list)
    refused: list[tuple[Month, Refusal]] = field(default_factory=list)
    reversed: list[Booked] = field(default_factory=list)  # unbilled: room freed
    credited: list[Booked] = field(default_factory=list)  # billed: a credit at BPJS
    held_cancelled: list[tuple[Month, UUID]] = field(default_factory=list)  # (held, schedule)
    tombstones: list[Month] = field(default_factory=list)
    cancelled_early: list[Month] = field(default_factory=list)  # due, tombstoned before
    room_used: dict[Allocation, int] = field(default_factory=dict)
    # the cancelled month (of its schedule) that cancelled each booked or held month
    cancelled_by: dict[UUID, Month] = field(default_factory=dict)
    # months a standing BPJS rejection cancelled on arrival or in the held queue
    bpjs_rejected: list[tuple[Month, Rejection]] = field(default_factory=list)


class _Batch:
    """The running state of one batch: the facts, changed as months are decided."""

    def __init__(self, facts: Facts) -> None:
        self.room = dict(facts.room)
        self.premiums = facts.premiums
        self.rates: dict[tuple[str, str], tuple[int, int, int] | None] = {}
        self.booked = dict(facts.booked)
        self.active = dict(facts.active)
        self.held = dict(facts.held)
        self.tombstones = dict(facts.tombstones)
        self.decided = set(facts.decided)
        self.next_seq = facts.next_hold_seq
        self.ranks = facts.ranks
        self.rejections = facts.rejections
        self.plan = Plan()
        # The waiting months of each allocation in the order they were held, how many of
        # them wait for room, and which wait for a worker-month's earlier generation.
        self.queues: dict[Allocation, list[UUID]] = {}
        self.for_room: dict[Allocation, int] = {}
        self.awaiting: dict[WorkerMonth, set[Allocation]] = {}
        for held in sorted(facts.held.values(), key=lambda h: h.seq):
            if held.waiting:
                self._enqueue(held)
                self.next_seq = max(self.next_seq, held.seq + 1)

    # --- the queue of held months -------------------------------------------------------

    def _place(self, cid: UUID) -> tuple[int, int]:
        """Where a held month waits: by its worker's renewal rank (none: after every ranked
        one), then in the order the months were held."""
        held = self.held[cid]
        rank = self.ranks.get((held.month.programme, held.month.nik), UNRANKED)
        return (rank, held.seq)

    def _enqueue(self, held: Held) -> None:
        allocation = held.month.allocation
        queue = self.queues.setdefault(allocation, [])
        insort(queue, held.month.contribution_id, key=self._place)
        if held.reason is HoldReason.AWAITING_CANCELLATION:
            self.awaiting.setdefault(held.month.worker_month, set()).add(allocation)
        else:
            self.for_room[allocation] = self.for_room.get(allocation, 0) + 1

    def hold(self, month: Month, reason: HoldReason) -> None:
        held = Held(month, reason, self.next_seq)
        self.next_seq += 1
        self.held[month.contribution_id] = held
        self._enqueue(held)
        self.plan.held.append((month, reason))
        self.plan.steps.append(("hold", month))

    def resolve(self, held: Held) -> None:
        self.held[held.month.contribution_id] = Held(held.month, held.reason, held.seq, False)
        if held.reason is not HoldReason.AWAITING_CANCELLATION:
            self.for_room[held.month.allocation] -= 1

    def rate(self, programme: str, period: str) -> tuple[int, int, int] | None:
        key = (programme, period)
        if key not in self.rates:
            self.rates[key] = _rate(self.premiums.get(programme, ()), period)
        return self.rates[key]

    # --- booking ------------------------------------------------------------------------

    def book(self, month: Month, *, released: bool) -> None:
        self.room[month.allocation] -= month.amount_idr
        self.plan.room_used[month.allocation] = (
            self.plan.room_used.get(month.allocation, 0) + month.amount_idr)
        self.booked[month.contribution_id] = Booked(month)
        self.active[month.worker_month] = month.contribution_id
        (self.plan.released if released else self.plan.booked).append(month)
        self.plan.steps.append(("book", month))

    def due(self, month: Month) -> None:
        cid = month.contribution_id
        if cid in self.booked:
            if self.booked[cid].month.schedule_id != month.schedule_id:
                self.refuse(month, Refusal.BOOKED_BY_ANOTHER_SCHEDULE)
            return
        if cid in self.held:
            if self.held[cid].month.schedule_id != month.schedule_id:
                self.refuse(month, Refusal.HELD_FOR_ANOTHER_SCHEDULE)
            return
        if cid in self.decided:
            return
        if cid in self.tombstones:
            self.decided.add(cid)
            self.plan.cancelled_early.append(month)
            return
        rejection = self.rejected(month)
        if rejection is not None:
            self.reject(month, rejection)
            return
        premium = self.rate(month.programme, month.period)
        if premium is not None and premium != (month.amount_idr, month.jkk_idr, month.jkm_idr):
            self.refuse(month, Refusal.AMOUNT_NOT_PROGRAMME_PREMIUM)
            return
        payer = self.active.get(month.worker_month)
        if payer is not None:
            if self.booked[payer].month.generation < month.generation:
                self.hold(month, HoldReason.AWAITING_CANCELLATION)
            else:
                self.decided.add(cid)
                self.plan.duplicates.append((month, payer))
            return
        allocation = month.allocation
        if allocation not in self.room:
            self.hold(month, HoldReason.NO_ALLOCATION)
        elif self.for_room.get(allocation, 0) or month.amount_idr > self.room[allocation]:
            self.hold(month, HoldReason.BUDGET_EXCEEDED)
        else:
            self.book(month, released=False)

    def rejected(self, month: Month) -> Rejection | None:
        """The worker's standing rejection at BPJS, if it judged the month's registration."""
        rejection = self.rejections.get((month.programme, month.nik))
        return rejection if rejection is not None and rejection.covers(month) else None

    def reject(self, month: Month, rejection: Rejection) -> None:
        """Cancel a due month on arrival for BPJS's rejection, as if the rejection's
        cancellation had arrived before it: a tombstone (carrying the verdict's id as its
        schedule and event) and the month cancelled on arrival."""
        tombstone = replace(month, schedule_id=rejection.verification_id,
                            registration_event_id=rejection.verification_id,
                            occurred_at=rejection.verified_at)
        self.tombstones[month.contribution_id] = tombstone
        self.decided.add(month.contribution_id)
        self.plan.tombstones.append(tombstone)
        self.plan.cancelled_early.append(month)
        self.plan.bpjs_rejected.append((month, rejection))

    def refuse(self, month: Month, reason: Refusal) -> None:
        self.decided.add(month.contribution_id)
        self.plan.refused.append((month, reason))

    # --- cancelling ---------------------------------------------------------------------

    def cancel(self, month: Month) -> None:
        cid = month.contribution_id
        booked = self.booked.get(cid)
        if booked is not None:
            if not booked.cancelled:
                self._cancel_booked(booked, month)
            return
        held = self.held.get(cid)
        if held is not None:
            if held.waiting:
                self.resolve(held)
                self.plan.cancelled_by[cid] = month
                self.plan.held_cancelled.append((held.month, month.schedule_id))
                self.release(held.month.allocation)
            return
        if cid in self.tombstones or cid in self.decided:
            return
        self.tombstones[cid] = month
        self.plan.tombstones.append(month)

    def _cancel_booked(self, booked: Booked, by: Month) -> None:
        month = booked.month
        self.booked[month.contribution_id] = Booked(month, cancelled=True, billed=booked.billed)
        self.plan.cancelled_by[month.contribution_id] = by
        if self.active.get(month.worker_month) == month.contribution_id:
            del self.active[month.worker_month]
        if booked.billed:
            self.plan.credited.append(booked)  # the money is at BPJS: no room is freed
        else:
            self.plan.reversed.append(booked)
            self.room[month.allocation] += month.amount_idr
            self.plan.room_used[month.allocation] = (
                self.plan.room_used.get(month.allocation, 0) - month.amount_idr)
        self.plan.steps.append(("cancel", booked))
        self.release(month.allocation)
        for allocation in sorted(self.awaiting.get(month.worker_month, ())):
            self.release(allocation)

    # --- releasing ----------------------------------------------------------------------

    def release(self, allocation: Allocation) -> None:
        """Book the held months of an allocation that can be booked now, oldest first; stop
        at the first one the room cannot take."""
        queue = self.queues.get(allocation)
        if not queue:
            return
        kept: list[UUID] = []
        for position, cid in enumerate(queue):
            held = self.held[cid]
            if not held.waiting:
                continue
            month = held.month
            rejection = self.rejected(month)
            if rejection is not None:  # held before BPJS's rejection was known: never booked
                self.resolve(held)
                self.plan.held_cancelled.append((month, rejection.verification_id))
                self.plan.bpjs_rejected.append((month, rejection))
                continue
            payer = self.active.get(month.worker_month)
            if payer is not None:
                if self.booked[payer].month.generation < month.generation:
                    kept.append(cid)  # still waits for the earlier generation's cancellation
                    continue
                self.resolve(held)
                self.plan.held_duplicates.append((month, payer))
                continue
            if allocation not in self.room or month.amount_idr > self.room[allocation]:
                if held.reason is HoldReason.AWAITING_CANCELLATION:
                    kept.append(cid)
                    continue
                kept.extend(queue[position:])
                break
            self.resolve(held)
            self.book(month, released=True)
        queue[:] = kept

def _rate(rates: Sequence[tuple[str, tuple[int, int, int]]],
          period: str) -> tuple[int, int, int] | None:
    """The premium in force in ``period``: the latest rate effective from it or before."""
    found = None
    for effective_from, premium in rates:
        if effective_from <= period:
            found = premium
    return found


def plan(arrivals: Sequence[Arrival], facts: Facts,
         release: Iterable[Allocation] = ()) -> Plan:
    """Decide a batch: every arrival in order, then the held months of the allocations in
    ``release`` (and of every allocation the batch touched) that fit now."""
    batch = _Batch(facts)
    touched: dict[Allocation, None] = dict.fromkeys(release)
    touched.update(dict.fromkeys(a.month.allocation for a in arrivals))
    for allocation in touched:  # what fits already goes first (room raised meanwhile)
        batch.release(allocation)
    for arrival in arrivals:
        if arrival.kind == "due":
            batch.due(arrival.month)
        else:
            batch.cancel(arrival.month)
    for allocation in touched:
        batch.release(allocation)
    return batch.plan
