"""The months a BPJS rejection cancelled are cancelled in the worker's enrolment too, once."""

from __future__ import annotations

from services.domain.bpjs_rejections import stop_rejected_months
from services.domain.enrolment import Enrolment, WorkerState, generations

MONTHS = ["2025-12", "2026-01", "2026-02"]


def _state() -> WorkerState:
    return WorkerState(enrollments=[
        Enrolment(event_id="e1", programme="malang-2025", opd_code="DISNAKER",
                  category="ojek_online", kecamatan="Klojen", funding_source="DBHCHT",
                  periods=MONTHS, cancelled=["2026-02"]),
        Enrolment(event_id="e2", programme="jatim-malang-2026", opd_code="DINSOS_JATIM",
                  category="ojek_online", kecamatan="Klojen", funding_source="APBD-JATIM",
                  periods=["2026-03"]),
    ])


def test_the_rejected_months_are_cancelled_in_the_enrolment_that_pays_them() -> None:
    stopped = [("v1", "malang-2025", "2025-12"), ("v1", "malang-2025", "2026-01")]
    state = stop_rejected_months(_state(), stopped)
    assert state is not None
    paid, other = state.enrollments
    assert paid.active_periods() == set() and paid.cancellations == {
        "v1": ["2025-12", "2026-01"]}
    assert other == _state().enrollments[1]  # another programme's enrolment is untouched
    # enrolled again, the months are a new generation
    assert generations(state.enrollments, MONTHS) == {m: 1 for m in MONTHS}
    assert stop_rejected_months(state, stopped) is None  # applied once


def test_months_no_enrolment_holds_change_nothing() -> None:
    assert stop_rejected_months(_state(), [("v1", "malang-2025", "2027-01"),
                                           ("v1", "other", "2025-12")]) is None
