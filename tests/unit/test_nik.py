"""The NIK check: real NIKs pass, anything that cannot be a NIK is refused with a reason
a clerk can act on, and the NIK itself never appears in a message."""

from __future__ import annotations

import calendar
from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.domain.data.build_regions import EDITIONS, codes_of
from services.domain.nik import (
    PROVINCE_CODES,
    REGIONS,
    REGIONS_FILE,
    NikError,
    encode_nik,
    mask_nik,
    nik_matches_birth_date,
    nik_of,
    parse_nik,
)
from tests.support.workers import deregistration, registration, unique_nik

TODAY = date(2025, 11, 26)


@pytest.mark.parametrize(
    ("nik", "born", "sex"),
    [
        ("3573010507900001", date(1990, 7, 5), "M"),
        ("3573014507900001", date(1990, 7, 5), "F"),  # day + 40: a woman
        ("3573016902000007", date(2000, 2, 29), "F"),  # 29 February 2000 exists
        ("3171023112059999", date(2005, 12, 31), "M"),  # a Jakarta NIK: prefix not checked
        ("9601011503800001", date(1980, 3, 15), "M"),  # a 2022 Papua province
        ("9101011503800001", date(1980, 3, 15), "M"),  # Merauke before it became 93.01
        ("3507244507900001", date(1990, 7, 5), "F"),  # Singosari, Kabupaten Malang
    ],
)
def test_real_niks_decode_to_their_birth_date_and_sex(nik: str, born: date, sex: str) -> None:
    decoded = parse_nik(nik, reference=TODAY)
    assert (decoded.birth_date, decoded.sex) == (born, sex)
    assert decoded.serial >= 1


@pytest.mark.parametrize(
    ("nik", "says"),
    [
        ("357301450790001", "16 digits"),  # 15 digits
        ("35730145079000011", "16 digits"),  # 17 digits
        ("3573 0145 0790 0001", "16 digits"),
        ("3573-0145-0790-01", "16 digits"),
        ("3.57301E+15", "16 digits"),  # what a spreadsheet does to a number
        ("357301450790000O", "16 digits"),  # letter O for zero
        ("３５７３０１４５０７９００００１", "16 digits"),  # full-width digits
        ("", "16 digits"),
        ("1073014507900001", "province code 10"),
        ("9973014507900001", "province code 99"),
        ("3500014507900001", "regency"),
        ("3573004507900001", "district"),
        ("3573010007900001", "birth date"),  # day 00
        ("3573013207900001", "birth date"),  # day 32
        ("3573017207900001", "birth date"),  # day 72 = 32 + 40
        ("3573014513900001", "birth date"),  # month 13
        ("3573014500900001", "birth date"),  # month 00
        ("3573013002900001", "birth date"),  # 30 February
        ("3573012902010001", "birth date"),  # 29 February 2001 / 1901
        ("3573014507900000", "serial"),
    ],
)
def test_impossible_niks_are_refused_with_the_part_that_is_wrong(nik: str, says: str) -> None:
    with pytest.raises(NikError) as caught:
        parse_nik(nik, reference=TODAY)
    assert caught.value.code == "invalid_nik"
    assert says in caught.value.message
    if len(nik) >= 8:
        assert nik not in caught.value.message


@pytest.mark.parametrize(
    ("nik", "code", "says"),
    [
        ("3599014507900001", "unknown_regency_code", "35.99"),  # Jawa Timur has no 35.99
        ("3530014507900001", "unknown_regency_code", "35.30"),  # regencies end at 35.29
        ("3573064507900001", "unknown_kecamatan_code", "35.73"),  # Malang: 01-05 only
        ("3507994507900001", "unknown_kecamatan_code", "35.07"),
    ],
)
def test_a_region_code_missing_from_the_kemendagri_list_is_refused_with_its_code(
    nik: str, code: str, says: str
) -> None:
    with pytest.raises(NikError) as caught:
        parse_nik(nik, reference=TODAY)
    assert caught.value.code == code
    assert says in caught.value.message and "Kemendagri" in caught.value.message
    assert nik[:6] not in caught.value.message  # the six region digits are not echoed


def test_the_region_list_keeps_retired_codes_and_knows_the_city() -> None:
    assert REGIONS["3573"] == frozenset({"01", "02", "03", "04", "05"})
    assert "9101" in REGIONS and "9301" in REGIONS  # Merauke's old and new code
    assert len(PROVINCE_CODES) == 38
    assert len(REGIONS) >= 540 and sum(len(d) for d in REGIONS.values()) >= 7_800


def test_the_century_is_the_latest_that_puts_the_birth_on_or_before_the_reference() -> None:
    assert parse_nik("3573010112250001", reference=TODAY).birth_date == date(1925, 12, 1)
    assert parse_nik("3573012511250001", reference=TODAY).birth_date == date(2025, 11, 25)
    assert parse_nik("3573010507050001", reference=TODAY).birth_date == date(2005, 7, 5)


def test_a_centenarian_matches_the_nik_although_the_century_is_guessed() -> None:
    nik = parse_nik("3573010101250001", reference=TODAY)
    assert nik_matches_birth_date(nik, date(1925, 1, 1))
    assert nik_matches_birth_date(nik, date(2025, 1, 1))
    assert not nik_matches_birth_date(nik, date(1925, 1, 2))


def test_a_masked_nik_shows_only_the_region_and_the_last_two_digits() -> None:
    assert mask_nik("3573014507900001") == "3573**********01"
    assert mask_nik("12345") == "*****"


def test_encode_refuses_parts_that_do_not_fit() -> None:
    with pytest.raises(ValueError):
        encode_nik("35", "73", "01", date(1990, 1, 1), "X", 1)
    with pytest.raises(ValueError):
        encode_nik("35", "73", "01", date(1990, 1, 1), "M", 10_000)


# --- properties ------------------------------------------------------------------------

# (province, regency, kecamatan) of the Kemendagri list, e.g. ("35", "73", "01").
places = st.sampled_from(sorted((r[:2], r[2:], d) for r, ds in REGIONS.items() for d in ds))
# Within the century before the reference, DDMMYY names exactly one date.
birth_dates = st.dates(min_value=TODAY - timedelta(days=99 * 365), max_value=TODAY)
sexes = st.sampled_from(["M", "F"])
serials = st.integers(1, 9999)


@given(places, birth_dates, sexes, serials)
def test_every_valid_nik_round_trips(
    place: tuple[str, str, str], born: date, sex: str, serial: int
) -> None:
    province, regency, district = place
    text = encode_nik(province, regency, district, born, sex, serial)
    assert len(text) == 16 and text.isdigit()
    nik = parse_nik(text, reference=TODAY)
    assert (nik.province, nik.regency, nik.district) == (province, regency, district)
    assert (nik.birth_date, nik.sex, nik.serial) == (born, sex, serial)


def _could_be_real(text: str) -> bool:
    """An independent statement of the NIK rules, to judge mutated NIKs."""
    if text[4:6] not in REGIONS.get(text[:4], ()):
        return False
    day, month, yy = int(text[6:8]), int(text[8:10]), int(text[10:12])
    day = day - 40 if day > 40 else day
    if not 1 <= month <= 12:
        return False
    longest = max(calendar.monthrange(century + yy, month)[1] for century in (1900, 2000))
    return 1 <= day <= longest and int(text[12:]) >= 1


@given(places, birth_dates, sexes, serials, st.integers(0, 15), st.integers(0, 9))
def test_a_single_mistyped_digit_is_caught(
    place: tuple[str, str, str], born: date, sex: str, serial: int, position: int, digit: int,
) -> None:
    province, regency, district = place
    original = encode_nik(province, regency, district, born, sex, serial)
    mistyped = original[:position] + str(digit) + original[position + 1 :]
    if not _could_be_real(mistyped):
        # A broken province, region, date or serial is refused by the parser itself.
        with pytest.raises(NikError):
            parse_nik(mistyped, reference=TODAY)
        return
    nik = parse_nik(mistyped, reference=TODAY)
    if 6 <= position < 12 and mistyped != original:
        # Still a possible NIK, but it no longer agrees with the registration's data.
        assert not nik_matches_birth_date(nik, born) or nik.sex != sex


@given(st.text(max_size=20))
def test_arbitrary_text_never_crashes_the_parser(text: str) -> None:
    try:
        parse_nik(text, reference=TODAY)
    except NikError as exc:
        assert exc.code in {"invalid_nik", "unknown_regency_code", "unknown_kecamatan_code"}


def test_the_region_list_names_its_source_editions_and_licence() -> None:
    header = [line for line in REGIONS_FILE.read_text(encoding="utf-8").splitlines()
              if line.startswith("#")]
    text = "\n".join(header)
    assert "github.com/cahyadsn/wilayah" in text and "MIT" in text
    for _, decree in EDITIONS:
        assert decree in text


def test_the_regeneration_script_reads_both_quoting_styles_and_skips_villages() -> None:
    sql = """INSERT INTO wilayah VALUES ("35","JAWA TIMUR"),("35.73","KOTA MALANG"),
    ("35.73.01","Blimbing"),("35.73.01.1001","Balearjosari"),
    ('91.01','Kabupaten Merauke'),('91.01.02','Merauke');"""
    assert codes_of(sql) == {"3573": {"01"}, "9101": {"02"}}


def test_the_nik_of_an_event_is_its_workers_or_its_own() -> None:
    nik = unique_nik()
    assert nik_of(registration(nik=nik)) == nik
    assert nik_of(deregistration(nik, "2026-03")) == nik
