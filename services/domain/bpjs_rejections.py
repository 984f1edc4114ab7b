"""A worker's enrolment after BPJS rejected the worker: the months the ledger cancelled for
the rejection are cancelled in the enrolment that paid them too (as a deregistration
would), so the OPD can correct the data and enrol the worker again for those months (a new
generation of each month, as after a deregistration)."""

from __future__ import annotations

from collections.abc import Iterable

from services.domain.enrolment import WorkerState


def stop_rejected_months(state: WorkerState, stopped: Iterable[tuple[str, str, str]]
                         ) -> WorkerState | None:
    """``state`` with the ``(verification_id, programme, period)`` months BPJS's rejections
    cancelled marked cancelled in the enrolment of the programme that holds them active;
    None when that changes nothing (already applied, or no enrolment holds them)."""
    wanted: dict[str, list[tuple[str, str]]] = {}
    for verification_id, programme, period in stopped:
        wanted.setdefault(programme, []).append((verification_id, period))
    enrollments = []
    changed = False
    for enrollment in state.enrollments:
        active = enrollment.active_periods()
        hits = sorted({(v, p) for v, p in wanted.get(enrollment.programme, ()) if p in active})
        if not hits:
            enrollments.append(enrollment)
            continue
        cancellations = {k: list(v) for k, v in enrollment.cancellations.items()}
        for verification_id, period in hits:
            cancellations.setdefault(verification_id, []).append(period)
        enrollments.append(enrollment.model_copy(update={
            "cancelled": sorted(set(enrollment.cancelled) | {p for _, p in hits}),
            "cancellations": cancellations}))
        changed = True
    return state.model_copy(update={"enrollments": enrollments}) if changed else None
