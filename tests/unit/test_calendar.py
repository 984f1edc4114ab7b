"""The official calendar: national holidays and cuti bersama kept once per year in
deploy/calendar/, and the due dates it moves."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from services.domain.official_calendar import CalendarError, load_calendar
from services.domain.periods import due_date
from services.domain.programme import load_programmes
from services.runtime.settings import REPO_ROOT

CALENDAR_DIR = REPO_ROOT / "deploy" / "calendar"
CALENDAR = load_calendar(CALENDAR_DIR)
DAYS_OFF = CALENDAR.days_off


def test_each_year_names_its_decree_and_has_the_announced_number_of_days() -> None:
    assert {2025, 2026} <= CALENDAR.years
    assert "No. 1497 Tahun 2025" in CALENDAR.sources[2026]
    assert "No. 1017 Tahun 2024" in CALENDAR.sources[2025]
    assert "No. 933 Tahun 2025" in CALENDAR.sources[2025]  # the amendment adding 18 August
    in_2026 = sorted(d for d in DAYS_OFF if d.year == 2026)
    assert len(in_2026) == 17 + 8  # 17 national holidays, 8 days of cuti bersama


@pytest.mark.parametrize("day", [
    date(2026, 2, 16), date(2026, 3, 18), date(2026, 5, 15), date(2026, 5, 28),
    date(2026, 12, 24), date(2025, 8, 18), date(2025, 12, 26),
])
def test_the_cuti_bersama_that_programme_files_missed_are_days_off(day: date) -> None:
    assert day in DAYS_OFF


@pytest.mark.parametrize(("period", "due_day", "due"), [
    ("2025-12", 15, date(2025, 12, 15)),  # a Monday
    ("2025-12", 24, date(2025, 12, 24)),  # 24 Dec 2025 is a working day
    ("2025-12", 25, date(2025, 12, 29)),  # Christmas, cuti bersama, weekend
    ("2026-02", 15, date(2026, 2, 18)),   # Sunday, cuti bersama Imlek, Imlek
    ("2026-03", 18, date(2026, 3, 25)),   # Nyepi cuti and day, Idulfitri, cuti, weekend
    ("2026-05", 15, date(2026, 5, 18)),   # cuti bersama after Ascension, then the weekend
    ("2026-05", 27, date(2026, 5, 29)),   # Iduladha, then its cuti bersama
    ("2026-08", 15, date(2026, 8, 18)),   # Saturday, Sunday, Independence Day
    ("2026-12", 24, date(2026, 12, 28)),  # cuti bersama, Christmas, weekend
])
def test_a_due_date_moves_past_holidays_cuti_bersama_and_weekends(
    period: str, due_day: int, due: date
) -> None:
    assert due_date(period, due_day, DAYS_OFF) == due


def test_every_programme_takes_the_shared_calendar_and_none_lists_its_own() -> None:
    programmes = load_programmes(REPO_ROOT / "deploy" / "programmes")
    assert {p.holidays for p in programmes.values()} == {DAYS_OFF}
    for path in (REPO_ROOT / "deploy" / "programmes").glob("*.toml"):
        assert "[calendar]" not in path.read_text(encoding="utf-8")


def _year(tmp_path: Path, name: str, body: str) -> Path:
    (tmp_path / name).write_text(body, encoding="utf-8")
    return tmp_path


def test_a_calendar_file_for_another_year_or_without_a_source_is_refused(
    tmp_path: Path
) -> None:
    text = (CALENDAR_DIR / "2026.toml").read_text(encoding="utf-8")
    with pytest.raises(CalendarError, match="2027.toml: year: 2026"):
        load_calendar(_year(tmp_path, "2027.toml", text))
    (tmp_path / "2027.toml").unlink()
    with pytest.raises(CalendarError, match="source"):
        load_calendar(_year(tmp_path, "2026.toml", text.replace("source =", "decree =")))
    wrong_day = text.replace("2026-12-24", "2027-12-24")
    with pytest.raises(CalendarError, match="days outside 2026: 2027-12-24"):
        load_calendar(_year(tmp_path, "2026.toml", wrong_day))
