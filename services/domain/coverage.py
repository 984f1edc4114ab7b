"""The coverage fold: per-worker state from contribution schedules, and totals over workers.

Applying the same schedule twice changes nothing (schedule ids are remembered), so totals
stay exact under at-least-once delivery.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from schemas.events import ContributionSchedule

WorkerState = dict[str, Any]
# {"applied": [schedule_id, ...], "months": {"programme|period": [opd, category, kecamatan, idr]}}


def apply_schedule(state: WorkerState | None, schedule: ContributionSchedule) -> WorkerState | None:
    """The worker's state after ``schedule``; None when the schedule was already applied."""
    current = state or {"applied": [], "months": {}}
    schedule_key = str(schedule.schedule_id)
    if schedule_key in current["applied"]:
        return None
    months = dict(current["months"])
    for due in schedule.contributions:
        key = f"{schedule.programme}|{due.period}"
        if schedule.kind == "due":
            months.setdefault(
                key, [schedule.opd_code, schedule.category.value, schedule.kecamatan,
                      due.amount_idr]
            )
        else:
            months.pop(key, None)
    return {"applied": [*current["applied"], schedule_key], "months": months}


def _bucket() -> dict[str, int]:
    return {"active_workers": 0, "contributions_booked": 0, "booked_idr": 0}


def totals(states: Iterable[WorkerState]) -> dict[str, Any]:
    """Totals per programme, and per OPD, category and kecamatan within each programme."""
    result: dict[str, Any] = {}
    for state in states:
        seen: set[tuple[str, str, str]] = set()
        for key, (opd, category, kecamatan, amount) in state["months"].items():
            programme = key.split("|", 1)[0]
            entry = result.setdefault(programme, {
                "total": _bucket(),
                "by_opd": defaultdict(_bucket),
                "by_category": defaultdict(_bucket),
                "by_kecamatan": defaultdict(_bucket),
            })
            for dimension, value in (("total", None), ("by_opd", opd),
                                     ("by_category", category), ("by_kecamatan", kecamatan)):
                bucket = entry[dimension] if value is None else entry[dimension][value]
                bucket["contributions_booked"] += 1
                bucket["booked_idr"] += amount
                marker = (programme, dimension, value or "")
                if marker not in seen:
                    seen.add(marker)
                    bucket["active_workers"] += 1
    for entry in result.values():
        for dimension in ("by_opd", "by_category", "by_kecamatan"):
            entry[dimension] = dict(sorted(entry[dimension].items()))
    return result
