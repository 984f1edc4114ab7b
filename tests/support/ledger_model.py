"""An in-memory ledger for the booking model's unit tests: it keeps the facts the database
would hold and applies each plan to them (a fake, not a mock: the same rules hold)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import date, datetime

from services.ledger.model import Arrival, Booked, Facts, Held, Month, Plan, plan

PREMIUM = (16_800, 10_000, 6_800)


def month(nik: str, period: str, *, generation: int = 0, programme: str = "p1",
          schedule: str = "s", amount: int = PREMIUM[0],
          occurred_at: datetime | None = None) -> Month:
    """A month of a schedule; the contribution id derives from programme, NIK, period and
    generation, and the schedule id from ``schedule`` (as the validator derives them)."""
    jkk = amount - PREMIUM[2]
    return Month(
        contribution_id=uuid.uuid5(uuid.NAMESPACE_OID, f"{programme}:{nik}:{period}:{generation}"),
        nik=nik, period=period, generation=generation, programme=programme,
        funding_source="APBD", amount_idr=amount, jkk_idr=jkk, jkm_idr=PREMIUM[2],
        schedule_id=uuid.uuid5(uuid.NAMESPACE_OID, schedule),
        registration_event_id=uuid.uuid5(uuid.NAMESPACE_OID, f"event:{schedule}"),
        due_date=date(2026, 1, 15), occurred_at=occurred_at)


def due(*months: Month) -> list[Arrival]:
    return [Arrival("due", m) for m in months]


def cancelled(*months: Month) -> list[Arrival]:
    return [Arrival("cancelled", m) for m in months]


class MemoryLedger:
    """Every fact the ledger holds, kept as :class:`Facts`, changed by each plan."""

    def __init__(self, budgets: dict[str, int]) -> None:
        self.facts = Facts(room={(p, "APBD"): budget for p, budget in budgets.items()},
                           premiums={p: [("2000-01", PREMIUM)] for p in budgets})
        self.allocated = dict(self.facts.room)
        self.plans: list[Plan] = []

    def book(self, arrivals: Sequence[Arrival]) -> Plan:
        decided = plan(arrivals, self.facts)
        self.apply(decided)
        return decided

    def raise_budget(self, programme: str, amount: int) -> Plan:
        key = (programme, "APBD")
        self.facts.room[key] += amount
        self.allocated[key] += amount
        decided = plan([], self.facts, release=[key])
        self.apply(decided)
        return decided

    def bill(self, programme: str) -> None:
        """Every active month of the programme goes on a bill."""
        for cid, booked in list(self.facts.booked.items()):
            if booked.month.programme == programme and not booked.cancelled:
                self.facts.booked[cid] = Booked(booked.month, billed=True)

    def apply(self, decided: Plan) -> None:
        f = self.facts
        self.plans.append(decided)
        for key, used in decided.room_used.items():
            f.room[key] -= used
        for kind, item in decided.steps:
            if kind == "book":
                assert isinstance(item, Month)
                f.booked[item.contribution_id] = Booked(item)
                f.active[item.worker_month] = item.contribution_id
            elif kind == "cancel":
                assert isinstance(item, Booked)
                m = item.month
                f.booked[m.contribution_id] = Booked(m, cancelled=True, billed=item.billed)
                if f.active.get(m.worker_month) == m.contribution_id:
                    del f.active[m.worker_month]
            elif kind == "hold":
                assert isinstance(item, Month)
                reason = next(r for h, r in decided.held if h == item)
                f.held[item.contribution_id] = Held(item, reason, f.next_hold_seq)
                f.next_hold_seq += 1
        resolved = [m for m in decided.released] + [m for m, _ in decided.held_cancelled] + [
            m for m, _ in decided.held_duplicates]
        for m in resolved:
            h = f.held[m.contribution_id]
            f.held[m.contribution_id] = Held(h.month, h.reason, h.seq, waiting=False)
        for m, _ in (*decided.duplicates, *decided.refused):
            f.decided.add(m.contribution_id)
        f.decided.update(m.contribution_id for m in decided.cancelled_early)
        f.tombstones.update((m.contribution_id, m) for m in decided.tombstones)

    # --- what a person reads ------------------------------------------------------------

    def active_months(self) -> set[tuple[str, str, int]]:
        return {(b.month.nik, b.month.period, b.month.generation)
                for b in self.facts.booked.values() if not b.cancelled}

    def waiting(self) -> set[tuple[str, str, int]]:
        return {(h.month.nik, h.month.period, h.month.generation)
                for h in self.facts.held.values() if h.waiting}

    def credits(self) -> int:
        return sum(b.month.amount_idr for b in self.facts.booked.values()
                   if b.cancelled and b.billed)

    def committed(self, key: tuple[str, str]) -> int:
        return self.allocated[key] - self.facts.room[key]


def run(ledger: MemoryLedger, batches: Iterable[Sequence[Arrival]]) -> MemoryLedger:
    for batch in batches:
        ledger.book(batch)
    return ledger
