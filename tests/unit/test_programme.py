"""Programme configuration as data: the Malang file, and clear errors for broken files."""

from __future__ import annotations

import tomllib
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from services.domain.periods import due_date
from services.domain.programme import (
    BRACKETS_FILE,
    JKK_BPU_INCOME_BRACKETS,
    Privacy,
    ProgrammeConfigError,
    load_programme,
    load_programmes,
)
from services.runtime.settings import REPO_ROOT

MALANG = REPO_ROOT / "deploy" / "programmes" / "malang-2025.toml"
CALENDAR = REPO_ROOT / "deploy" / "calendar"


def test_the_malang_programme_pays_16800_a_month() -> None:
    programme = load_programme(MALANG)
    assert programme.premium.jkk_idr == 10_000
    assert programme.premium.jkm_flat_idr == 6_800
    assert programme.premium.monthly_idr == 16_800
    assert programme.budget_idr == 5_300_000_000
    assert 25_808 * 12 * programme.premium.monthly_idr == 5_202_892_800
    assert sorted(programme.kecamatan) == [
        "Blimbing", "Kedungkandang", "Klojen", "Lowokwaru", "Sukun"]
    assert sum(len(k) for k in programme.kecamatan.values()) == 57
    assert programme.coverage.baseline_members + 25_808 == 204_419
    assert programme.first_period == "2025-09"  # the first cohort (registration was staged)


def test_business_dates_are_the_programmes_wall_clock() -> None:
    programme = load_programme(MALANG)
    assert programme.timezone == "Asia/Jakarta"
    # 30 November 18:00 UTC is 1 December 01:00 in Malang: a December day there.
    assert programme.today(datetime(2025, 11, 30, 18, 0, tzinfo=UTC)) == date(2025, 12, 1)
    assert programme.local(datetime(2025, 11, 30, 16, 59, tzinfo=UTC)).day == 30
    with pytest.raises(ValueError, match="naive"):
        programme.local(datetime(2025, 11, 30, 18, 0))  # noqa: DTZ001 - the refusal under test


def test_the_lowest_income_bracket_is_one_million_and_every_bracket_has_its_source() -> None:
    table = tomllib.loads(BRACKETS_FILE.read_text(encoding="utf-8"))
    assert "No. 44 Tahun 2015" in table["source"] and "PP No. 49 Tahun 2023" in table["source"]
    assert JKK_BPU_INCOME_BRACKETS[0] == 1_000_000
    for row in table["brackets"]:
        assert row["jkk_idr"] == row["income_idr"] // 100  # JKK is 1 % of it
        assert row["checked_against"]


def _broken(tmp_path: Path, old: str, new: str) -> Path:
    text = MALANG.read_text(encoding="utf-8")
    assert old in text
    path = tmp_path / "broken.toml"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("jkm_flat_idr = 6_800", "jkm_flat_idr = -1", "premium.jkm_flat_idr"),
        ("jkm_flat_idr = 6_800", "jkm_flat_idr = 6800.5", "premium.jkm_flat_idr"),
        ('first_period = "2025-09"', 'first_period = "2025-13"', "first_period"),
        ('last_period = "2026-11"', 'last_period = "2025-01"', "last_period is before"),
        ("min_age = 15", "min_age = 70", "min_age is greater than max_age"),
        ('    "ojek_online",', '    "becak",', "eligibility.categories"),
        ("budget_idr = 5_300_000_000", "budget_idr = 'lots'", "budget_idr"),
        ("[premium]", "[premium\n", "not valid TOML"),
        # Not an income bracket of PP 44/2015 (as amended): the key and the value are named.
        ("declared_income_idr = 1_000_000", "declared_income_idr = 1_500_000",
         "premium.declared_income_idr: Value error, Rp1,500,000 is not a JKK income bracket"),
        ("declared_income_idr = 1_000_000", "declared_income_idr = 900_000",
         "premium.declared_income_idr: Value error, Rp900,000 is not a JKK income bracket"),
        # Holidays come from the shared official calendar, never from a programme file.
        ("[eligibility]", '[calendar]\nholidays = ["2026-02-16"]\n\n[eligibility]',
         "calendar: holidays are not listed in a programme file"),
        ('timezone = "Asia/Jakarta"', 'timezone = "WIB"', "timezone: Value error, 'WIB' is not"),
    ],
)
def test_a_broken_file_names_the_key_and_the_problem(
    tmp_path: Path, old: str, new: str, message: str
) -> None:
    with pytest.raises(ProgrammeConfigError) as caught:
        load_programme(_broken(tmp_path, old, new), CALENDAR)
    assert message in str(caught.value)
    assert "broken.toml" in str(caught.value)


def test_a_second_city_is_only_a_new_file(tmp_path: Path) -> None:
    text = MALANG.read_text(encoding="utf-8").replace('id = "malang-2025"', 'id = "batu-2026"')
    (tmp_path / "malang.toml").write_text(MALANG.read_text(encoding="utf-8"), encoding="utf-8")
    (tmp_path / "batu.toml").write_text(text, encoding="utf-8")
    assert sorted(load_programmes(tmp_path, CALENDAR)) == ["batu-2026", "malang-2025"]


def test_the_same_id_twice_is_refused(tmp_path: Path) -> None:
    for name in ("a.toml", "b.toml"):
        (tmp_path / name).write_text(MALANG.read_text(encoding="utf-8"), encoding="utf-8")
    with pytest.raises(ProgrammeConfigError, match="defined twice"):
        load_programmes(tmp_path, CALENDAR)


def test_an_empty_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ProgrammeConfigError, match="no programme file"):
        load_programmes(tmp_path)


def test_the_nik_is_archived_no_shorter_than_the_personal_data_is_kept() -> None:
    assert Privacy(retention_years=5, archive_years=10).archive_years == 10
    with pytest.raises(ValueError, match="archive_years is never shorter"):
        Privacy(retention_years=10, archive_years=5)


def test_a_year_without_an_official_calendar_loads_with_a_warning_and_weekends_only(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from services.runtime.metrics import note_calendars

    path = _broken(tmp_path, 'last_period = "2026-11"', 'last_period = "2027-03"')
    programme = load_programme(path, CALENDAR)
    assert programme.calendar_missing == (2027,)
    with caplog.at_level("WARNING"):  # a service says so when it starts
        note_calendars([programme])
    assert "no official calendar for 2027" in caplog.text
    # the 15th of May 2027 is a Saturday: its due date moves past the weekend only
    assert due_date("2027-05", 15, programme.holidays) == date(2027, 5, 17)
    assert load_programme(MALANG, CALENDAR).calendar_missing == ()


def test_the_deployed_next_year_without_a_2027_calendar_is_exported_as_a_gauge() -> None:
    from prometheus_client import REGISTRY

    from services.runtime.metrics import note_calendars

    programmes = load_programmes(REPO_ROOT / "deploy" / "programmes", CALENDAR)
    assert programmes["malang-2026"].calendar_missing == (2027,)
    note_calendars(programmes.values())
    assert REGISTRY.get_sample_value("iuran_programme_calendar_missing",
                                     {"programme": "malang-2026", "year": "2027"}) == 1
    assert REGISTRY.get_sample_value("iuran_programme_calendar_missing",
                                     {"programme": "malang-2025", "year": "2026"}) is None
