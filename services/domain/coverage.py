"""The coverage fold: per-worker state from contribution schedules, and totals over workers.

Applying the same schedule twice changes nothing (schedule ids are remembered), so totals
stay exact under at-least-once delivery.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from schemas.events import ContributionSchedule

WorkerState = dict[str, Any]
# {"applied": [schedule_id, ...],
#  "months": {"programme|period": [opd, category, kecamatan, idr]},
#  "days": {"programme|due|YYYY-MM-DD": count}}   (registrations and deregistrations per day)


@dataclass(frozen=True, slots=True)
class ScheduleFacts:
    """What the coverage fold needs of a contribution schedule."""

    schedule_id: str
    kind: str
    nik: str
    programme: str
    opd_code: str
    category: str
    kecamatan: str
    day: str | None  # date the registration event occurred, YYYY-MM-DD
    months: tuple[tuple[str, int], ...]  # (period, amount_idr)


def facts_of(schedule: ContributionSchedule) -> ScheduleFacts:
    return ScheduleFacts(
        schedule_id=str(schedule.schedule_id), kind=schedule.kind, nik=schedule.nik,
        programme=schedule.programme, opd_code=schedule.opd_code,
        category=schedule.category.value, kecamatan=schedule.kecamatan,
        day=str(schedule.occurred_at.date()) if schedule.occurred_at else None,
        months=tuple((c.period, c.amount_idr) for c in schedule.contributions),
    )


def read_facts(raw: bytes) -> ScheduleFacts:
    """The facts of a v1 ContributionSchedule message, without validating the whole model
    (the ledger does that and rejects a malformed one); ValueError when a fact is missing."""
    try:
        data = json.loads(raw)
        occurred = data.get("occurred_at")
        return ScheduleFacts(
            schedule_id=str(data["schedule_id"]), kind=str(data["kind"]),
            nik=str(data["nik"]), programme=str(data["programme"]),
            opd_code=str(data["opd_code"]), category=str(data["category"]),
            kecamatan=str(data["kecamatan"]),
            day=datetime.fromisoformat(occurred).date().isoformat() if occurred else None,
            months=tuple((str(c["period"]), int(c["amount_idr"]))
                         for c in data["contributions"]),
        )
    except (KeyError, TypeError, AttributeError, json.JSONDecodeError) as exc:
        raise ValueError(f"not a contribution schedule: {type(exc).__name__}") from exc


def apply_schedule(
    state: WorkerState | None, schedule: ContributionSchedule | ScheduleFacts
) -> WorkerState | None:
    """The worker's state after ``schedule``; None when the schedule was already applied."""
    facts = facts_of(schedule) if isinstance(schedule, ContributionSchedule) else schedule
    current = state or {"applied": [], "months": {}}
    if facts.schedule_id in current["applied"]:
        return None
    months = dict(current["months"])
    for period, amount in facts.months:
        key = f"{facts.programme}|{period}"
        if facts.kind == "due":
            months.setdefault(key, [facts.opd_code, facts.category, facts.kecamatan, amount])
        else:
            months.pop(key, None)
    days = dict(current.get("days", {}))
    schedule_key = facts.schedule_id
    if facts.day is not None:
        day_key = f"{facts.programme}|{facts.kind}|{facts.day}"
        days[day_key] = days.get(day_key, 0) + 1
    return {"applied": [*current["applied"], schedule_key], "months": months, "days": days}


def _bucket() -> dict[str, int]:
    return {"active_workers": 0, "contributions_booked": 0, "booked_idr": 0}


def _entry(result: dict[str, Any], programme: str) -> dict[str, Any]:
    entry: dict[str, Any] = result.setdefault(programme, {
        "total": _bucket(),
        "by_opd": defaultdict(_bucket),
        "by_category": defaultdict(_bucket),
        "by_kecamatan": defaultdict(_bucket),
    })
    return entry


def totals(states: Iterable[WorkerState]) -> dict[str, Any]:
    """Totals per programme, and per OPD, category and kecamatan within each programme."""
    result: dict[str, Any] = {}
    for state in states:
        seen: set[tuple[str, str, str]] = set()
        for key, (opd, category, kecamatan, amount) in state["months"].items():
            programme = key.split("|", 1)[0]
            entry = _entry(result, programme)
            for dimension, value in (("total", None), ("by_opd", opd),
                                     ("by_category", category), ("by_kecamatan", kecamatan)):
                bucket = entry[dimension] if value is None else entry[dimension][value]
                bucket["contributions_booked"] += 1
                bucket["booked_idr"] += amount
                marker = (programme, dimension, value or "")
                if marker not in seen:
                    seen.add(marker)
                    bucket["active_workers"] += 1
        for key, count in state.get("days", {}).items():
            programme, kind, day = key.split("|", 2)
            entry = _entry(result, programme)
            per_day = entry.setdefault("registrations_by_day" if kind == "due"
                                       else "deregistrations_by_day", {})
            per_day[day] = per_day.get(day, 0) + count
    for entry in result.values():
        for dimension in ("by_opd", "by_category", "by_kecamatan"):
            entry[dimension] = dict(sorted(entry[dimension].items()))
    return result


def coverage_ratio(registered_outside: int, active_in_programme: int, workforce: int) -> float:
    """(registered outside the programme + active in it) / workforce."""
    if workforce <= 0:
        return 0.0
    return (registered_outside + active_in_programme) / workforce


def workers_to_reach(ratio: float, registered_outside: int, active_in_programme: int,
                     workforce: int) -> int:
    """How many more covered workers the ratio needs (0 when it is reached)."""
    needed = -(-int(round(ratio * workforce * 1_000_000)) // 1_000_000)  # ceil, no float drift
    return max(needed - registered_outside - active_in_programme, 0)


def yearly_cost(active_workers: int, monthly_premium_idr: int, months: int = 12) -> int:
    """What keeping today's active workers covered for a fiscal year costs, in rupiah."""
    return active_workers * monthly_premium_idr * months


def workers_coverable(budget_idr: int, monthly_premium_idr: int, months: int = 12) -> int:
    """How many workers a budget covers for ``months`` months."""
    if monthly_premium_idr <= 0 or months <= 0:
        return 0
    return budget_idr // (monthly_premium_idr * months)
