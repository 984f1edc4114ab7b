"""The coverage fold: what the ledger committed (iuran.ledger.v1 events) as changes of the
running coverage totals, with no database in sight.

An event says, per worker, which periods were booked, cancelled, credited, held, released,
cancelled while held and found duplicate while held. For coverage:

* booked months: +1 per month booked, -1 per booked month cancelled or credited;
* held months: +1 per month held, -1 per held month resolved (released, cancelled, duplicate).

:func:`deltas` sums a batch of events per (programme, period, OPD, category, kecamatan) — the
month series — and per (programme, group, worker) — four groups per worker: the total, its
OPD, its category, its kecamatan. A worker counts in a group while its months there are more
than 0: :func:`group_deltas` turns the workers' changes and their months after the change into
changes of the distinct counts (+1 when a worker's months went from 0 to more, -1 back to 0).
Every change is a sum, so the totals do not depend on the order of the events, and the
adapter (services/projector/fold.py) applies a batch with a few upserts.

An event also carries workers' standing BPJS verdicts. A worker's verdict is the one with the
latest ``verified_at`` (then the latest outbox id) of those applied, whatever their order.
Of a group's active workers, :func:`bpjs_group_deltas` counts those verified by BPJS and
those awaiting BPJS (no verdict yet): a worker moves between the two (or out, when rejected)
when its months in the group cross 0 or when its verdict changes, so a verdict applied
before the worker's months counts when they come.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from schemas.events import LedgerEvent

MonthKey = tuple[str, str, str, str, str]  # programme, period, opd_code, category, kecamatan
WorkerKey = tuple[str, str, str, int]  # programme, dimension, key, NIK as a number
GroupKey = tuple[str, str, str]  # programme, dimension, key
VerdictKey = tuple[str, int]  # programme, NIK as a number
Verdict = tuple[datetime, int, str]  # verified_at, outbox_id, status

# (booked, held) months each kind of change adds.
SIGNS: dict[str, tuple[int, int]] = {
    "booked": (1, 0), "cancelled": (-1, 0), "credited": (-1, 0),
    "held": (0, 1), "released": (0, -1), "held_cancelled": (0, -1), "held_duplicate": (0, -1),
}


@dataclass
class Deltas:
    """The changes of one batch of events."""

    # booked months, booked rupiah, held months, held rupiah, changes (months touched)
    months: dict[MonthKey, list[int]] = field(default_factory=dict)
    # booked months, booked rupiah, held months, held rupiah
    workers: dict[WorkerKey, list[int]] = field(default_factory=dict)
    # rupiah paid to BPJS, bills settled
    paid: dict[str, list[int]] = field(default_factory=dict)
    # each worker's latest standing verdict in the batch
    verdicts: dict[VerdictKey, Verdict] = field(default_factory=dict)


def deltas(events: Iterable[LedgerEvent]) -> Deltas:
    """The changes of the events, summed; workers whose months do not change are left out."""
    found = Deltas()
    months, workers = found.months, found.workers
    for event in events:
        programme = event.programme
        for w in event.workers:
            amount = w.amount_idr
            booked = held = 0
            for kind, (b, h) in SIGNS.items():
                periods = getattr(w, kind)
                for period in periods:
                    key = (programme, period, w.opd_code, w.category, w.kecamatan)
                    m = months.get(key)
                    if m is None:
                        m = months[key] = [0, 0, 0, 0, 0]
                    m[0] += b
                    m[1] += b * amount
                    m[2] += h
                    m[3] += h * amount
                    m[4] += 1
                booked += b * len(periods)
                held += h * len(periods)
            nik = int(w.nik)
            for dimension, group in (("total", ""), ("by_opd", w.opd_code),
                                     ("by_category", w.category),
                                     ("by_kecamatan", w.kecamatan)):
                d = workers.get((programme, dimension, group, nik))
                if d is None:
                    d = workers[(programme, dimension, group, nik)] = [0, 0, 0, 0]
                d[0] += booked
                d[1] += booked * amount
                d[2] += held
                d[3] += held * amount
        for bill in event.bills_settled:
            p = found.paid.setdefault(programme, [0, 0])
            p[0] += bill.amount_idr
            p[1] += 1
        for verdict in event.bpjs_verdicts:
            who = (programme, int(verdict.nik))
            seen = (verdict.verified_at, event.outbox_id, verdict.status)
            if who not in found.verdicts or seen[:2] > found.verdicts[who][:2]:
                found.verdicts[who] = seen
    found.workers = {k: d for k, d in workers.items() if any(d)}
    return found


def group_deltas(workers: Mapping[WorkerKey, list[int]],
                 now: Mapping[WorkerKey, tuple[int, int]]) -> dict[GroupKey, list[int]]:
    """Changes of each group's tallies — active workers, months booked, rupiah booked,
    workers awaiting, months held, rupiah held — from the workers' changes and their
    (booked, held) months after them."""
    groups: dict[GroupKey, list[int]] = {}
    for key, (booked, booked_idr, held, held_idr) in workers.items():
        now_booked, now_held = now[key]
        g = groups.get(key[:3])
        if g is None:
            g = groups[key[:3]] = [0, 0, 0, 0, 0, 0]
        g[0] += (now_booked > 0) - (now_booked - booked > 0)
        g[1] += booked
        g[2] += booked_idr
        g[3] += (now_held > 0) - (now_held - held > 0)
        g[4] += held
        g[5] += held_idr
    return groups


# The BPJS figure a worker with booked months counts in, by its standing verdict (None: no
# verdict yet): verified workers, awaiting workers; a rejected one in neither.
_BPJS_COLUMN: dict[str | None, int] = {"verified": 0, None: 1}


def bpjs_group_deltas(months: Mapping[WorkerKey, tuple[int, int]],
                      before: Mapping[VerdictKey, str | None],
                      after: Mapping[VerdictKey, str | None]) -> dict[GroupKey, list[int]]:
    """Changes of each group's verified and awaiting BPJS workers, from the workers' booked
    months in the group (before, after) and their standing verdicts before and after the
    batch (a worker missing from ``after`` kept its verdict)."""
    groups: dict[GroupKey, list[int]] = {}
    for key, (booked_before, booked_after) in months.items():
        worker = (key[0], key[3])
        was = before.get(worker)
        now = after.get(worker, was)
        g = groups.setdefault(key[:3], [0, 0])
        if booked_before > 0 and was in _BPJS_COLUMN:
            g[_BPJS_COLUMN[was]] -= 1
        if booked_after > 0 and now in _BPJS_COLUMN:
            g[_BPJS_COLUMN[now]] += 1
    return {k: g for k, g in groups.items() if any(g)}
