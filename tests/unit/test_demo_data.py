"""The demo batch: valid registrations that the programme's rules accept, in the mix, the
cohorts and with the region codes of the real Malang batch."""

from __future__ import annotations

from collections import Counter
from datetime import date

from services.demo.workers import BATCH, demo_registrations
from services.domain.nik import REGIONS
from services.domain.programme import load_programme
from services.domain.rules import check_registration
from services.domain.schedule import covered_periods
from services.runtime.settings import REPO_ROOT

PROGRAMME = load_programme(REPO_ROOT / "deploy" / "programmes" / "malang-2025.toml")
BATCH_EVENTS = list(demo_registrations(PROGRAMME, BATCH))


def test_demo_registrations_are_valid_unique_and_deterministic() -> None:
    events = BATCH_EVENTS[:2000]
    assert [check_registration(e, PROGRAMME, e.occurred_at.date()) for e in events] == [
        []] * 2000
    assert len({e.worker.nik for e in BATCH_EVENTS}) == BATCH
    assert [e.event_id for e in demo_registrations(PROGRAMME, 50)] == [
        e.event_id for e in events[:50]]
    assert set(Counter(e.worker.kecamatan for e in events)) == set(PROGRAMME.kecamatan)


def test_the_batch_follows_the_reported_category_mix() -> None:
    by_category = Counter(e.worker.category.value for e in BATCH_EVENTS)
    assert by_category == {"ojek_online": 7_711, "umkm": 5_615, "sopir_angkot": 2_495,
                           "kelompok_tani": 2_084, "bpu_lainnya": 831 + 144 + 6_928}
    by_opd = Counter(e.opd_code for e in BATCH_EVENTS)
    assert sum(n for opd, n in by_opd.items() if opd.startswith("KEC_")) == 6_928 > 6_000
    assert by_opd["DISHUB"] == 7_711 + 2_495


def test_the_cohorts_start_from_september_and_are_all_covered_in_december() -> None:
    by_start = Counter(e.coverage_start for e in BATCH_EVENTS)
    assert sorted(by_start) == ["2025-09", "2025-10", "2025-11", "2025-12"]
    by_1_november = sum(1 for e in BATCH_EVENTS if e.occurred_at.date() < date(2025, 11, 1))
    assert by_1_november == 15_000
    assert max(e.occurred_at.date() for e in BATCH_EVENTS) == date(2025, 11, 25)
    months = [covered_periods(PROGRAMME, e.coverage_start, e.months) for e in BATCH_EVENTS]
    assert {len(m) for m in months} == {12}
    assert all("2025-12" in m for m in months)
    assert sum(len(m) for m in months) * PROGRAMME.premium.monthly_idr == 5_202_892_800


def test_niks_carry_kemendagri_kecamatan_codes() -> None:
    codes = {"Blimbing": "01", "Klojen": "02", "Kedungkandang": "03", "Sukun": "04",
             "Lowokwaru": "05"}
    for event in BATCH_EVENTS:
        nik = event.worker.nik
        assert nik[4:6] in REGIONS[nik[:4]]
        if nik[:4] == "3573":
            assert nik[4:6] == codes[event.worker.kecamatan]
    elsewhere = Counter(e.worker.nik[:4] for e in BATCH_EVENTS if e.worker.nik[:4] != "3573")
    assert set(elsewhere) == {"3507"} and 0 < elsewhere["3507"] < BATCH // 20
