"""The renewal plan as plain functions: the month a renewal starts, the priority order of the
next programme and who of the renewed workers fits its budget."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from schemas.events import Category, Worker
from services.domain.nik import encode_nik
from services.domain.programme import Renewal, load_programmes
from services.domain.renewal import (
    ALREADY_ENROLLED,
    NO_DETAILS,
    Candidate,
    continuous_months,
    cover_ends,
    plan_renewal,
    renewal_event_id,
    renewal_start,
)
from services.runtime.settings import REPO_ROOT

PROGRAMMES = load_programmes(REPO_ROOT / "deploy" / "programmes")
SOURCE, TARGET = PROGRAMMES["malang-2025"], PROGRAMMES["malang-2026"]
YEAR = 12 * 16_800
NOW = datetime(2026, 12, 7, 2, 0, tzinfo=UTC)


def nik(serial: int) -> str:
    return encode_nik("35", "73", "02", date(1980, 1, 1), "M", serial)


def worker(serial: int) -> Worker:
    return Worker(nik=nik(serial), full_name="Budi Santoso", birth_date=date(1980, 1, 1),
                  sex="M", category=Category.OJEK_ONLINE, kecamatan="Klojen",
                  kelurahan="Kauman")


def candidate(serial: int, category: str = "ojek_online", through: str = "2026-11",
              run: int = 12) -> Candidate:
    return Candidate(nik=nik(serial), opd_code="DISNAKER", category=category,
                     kecamatan="Klojen", covered_through=through, continuous_months=run)


def test_a_renewal_starts_the_month_after_the_cover_and_never_before_the_programme() -> None:
    assert renewal_start("2026-11", TARGET) == "2026-12"
    assert renewal_start("2026-08", TARGET) == "2026-09"
    assert renewal_start("2025-11", TARGET) == "2026-09"  # lapsed: the programme's first month
    assert renewal_start("2027-11", TARGET) is None       # nothing left to renew into
    assert continuous_months(["2026-01", "2026-02", "2026-04", "2026-05"], "2026-05") == 2
    assert renewal_event_id(nik(1), TARGET.id) == renewal_event_id(nik(1), TARGET.id)
    assert renewal_event_id(nik(1), TARGET.id) != renewal_event_id(nik(1), SOURCE.id)


def test_the_priority_order_decides_who_fits_and_who_waits() -> None:
    target = TARGET.model_copy(update={"renewal": Renewal(
        priority=["category", "longest_cover"], categories=[Category.LINMAS])})
    workers = [candidate(1, run=12), candidate(2, "linmas", run=3), candidate(3, run=20),
               candidate(4, "linmas", run=9), candidate(5), candidate(6)]
    plan = plan_renewal(SOURCE, target, workers, enrolled={nik(5)},
                        details={nik(s): worker(s) for s in (1, 2, 3, 4, 5)},
                        room_idr=3 * YEAR, now=NOW)
    order = [r.candidate.nik for r in plan.renewed]
    assert order == [nik(4), nik(2), nik(3), nik(1)]  # linmas longest first, then the rest
    assert [r.candidate.nik for r in plan.fitting] == [nik(4), nik(2), nik(3)]
    assert [r.candidate.nik for r in plan.waiting] == [nik(1)]
    assert plan.skipped == {ALREADY_ENROLLED: [nik(5)], NO_DETAILS: [nik(6)]}
    assert plan.cost_idr(fits=True) == 3 * YEAR and plan.cost_idr(fits=False) == YEAR
    first = plan.renewed[0].event
    assert (first.programme, first.coverage_start, first.months, first.opd_code) == (
        TARGET.id, "2026-12", 12, "DISNAKER")
    assert first.worker.category is Category.LINMAS  # as the ledger last knew the worker


def test_the_months_cover_ends_count_every_worker_by_their_first_month_without_cover() -> None:
    assert cover_ends([candidate(1, through="2026-08"), candidate(2, through="2026-11"),
                       candidate(3, through="2026-08")]) == {"2026-09": 2, "2026-12": 1}


@pytest.mark.parametrize(("argv", "message"), [
    (["--from", "malang-2025", "--to", "malang-2025", "--by", "x", "--dry-run"],
     "--from and --to name the same programme"),
    (["--from", "malang-2024", "--to", "malang-2026", "--by", "x", "--dry-run"],
     "unknown programme 'malang-2024'"),
    (["--from", "malang-2025", "--to", "malang-2026", "--by", " ", "--dry-run"],
     "--by: a name of 1 to 100 characters"),
])
def test_a_bad_renew_argument_is_one_line_and_exit_2(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from services.cli.main import main

    assert main(["renew", *argv]) == 2
    said = [line for line in capsys.readouterr().err.splitlines() if line.startswith("iuran:")]
    assert len(said) == 1 and message in said[0]
