"""What the bench publishes and what the ledger must then hold.

One deterministic sequence of valid registrations per stack (``iuran demo``'s generator):
each phase takes the next slice, so no NIK is registered twice. The expected contributions
come from the programme's own schedule rule, so a check against them is exact: every
contribution id, once, with its amount.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field

from schemas.events import WorkerRegistered
from services.demo.workers import demo_registrations
from services.domain.programme import Programme
from services.domain.schedule import covered_periods, due_schedule


def registrations(programme: Programme, start: int, count: int,
                  namespace: str = "bench") -> Iterator[WorkerRegistered]:
    return itertools.islice(demo_registrations(programme, start + count, namespace=namespace),
                            start, None)


def schedule_json(programme: Programme, event: WorkerRegistered) -> bytes:
    """The ContributionSchedule the validator is to emit for ``event`` (the floor's input)."""
    periods = covered_periods(programme, event.coverage_start, event.months)
    return due_schedule(programme, event, periods).model_dump_json().encode()


def months_of(programme: Programme) -> int:
    """Contributions per bench registration (every one registers for the programme's span)."""
    return len(covered_periods(programme, programme.first_period, programme.months))


@dataclass
class Workload:
    programme: Programme
    taken: int = 0
    slices: list[tuple[int, int]] = field(default_factory=list)

    def take(self, count: int) -> tuple[int, int]:
        """Reserve the next ``count`` registrations; returns (start, count)."""
        part = (self.taken, count)
        self.taken += count
        self.slices.append(part)
        return part

    def events(self, part: tuple[int, int]) -> Iterator[WorkerRegistered]:
        return registrations(self.programme, *part)

    def messages(self, part: tuple[int, int]) -> Iterator[tuple[bytes, bytes]]:
        """(key, value) of each registration as an OPD publishes it."""
        for event in self.events(part):
            yield event.worker.nik.encode(), event.model_dump_json().encode()

    def expected_rows(self) -> Iterator[tuple[object, int]]:
        """(contribution_id, amount_idr) of every contribution of every slice taken."""
        for event in registrations(self.programme, 0, self.taken):
            periods = covered_periods(self.programme, event.coverage_start, event.months)
            for due in due_schedule(self.programme, event, periods).contributions:
                yield due.contribution_id, due.amount_idr

    def expected_contributions(self, count: int) -> int:
        return count * months_of(self.programme)
