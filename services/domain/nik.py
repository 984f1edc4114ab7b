"""NIK (Nomor Induk Kependudukan): 16 digits PPKKSS DDMMYY NNNN.

Province (2), regency/city (2), district (2), birth date with day + 40 for women, serial
from 0001. There is no check digit. The regency prefix is not checked: a Malang resident
may hold a NIK issued elsewhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

# Dukcapil province codes (38 provinces, including the 2022 Papua splits).
PROVINCE_CODES: frozenset[str] = frozenset(
    {
        "11", "12", "13", "14", "15", "16", "17", "18", "19", "21",
        "31", "32", "33", "34", "35", "36",
        "51", "52", "53",
        "61", "62", "63", "64", "65",
        "71", "72", "73", "74", "75", "76",
        "81", "82",
        "91", "92", "93", "94", "95", "96",
    }
)  # fmt: skip


class NikError(ValueError):
    """A NIK that cannot be a real one; ``code`` is the stable rejection code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class Nik:
    province: str
    regency: str
    district: str
    birth_date: date
    sex: str  # "M" | "F"
    serial: int


def _century(two_digits: int, reference: date) -> int:
    """Pick the century that puts the birth year at or before the reference year."""
    year = 2000 + two_digits
    return year if year <= reference.year else year - 100


def parse_nik(text: str, *, reference: date) -> Nik:
    """Decode a NIK or raise NikError. ``reference`` (e.g. today) resolves the century."""
    if len(text) != 16 or not text.isascii() or not text.isdigit():
        raise NikError("invalid_nik", "NIK must be exactly 16 digits (0-9), no spaces or dots")
    province = text[0:2]
    if province not in PROVINCE_CODES:
        raise NikError("invalid_nik", f"NIK starts with province code {province}, which does not exist")
    if text[2:4] == "00" or text[4:6] == "00":
        raise NikError("invalid_nik", "NIK has a regency or district code of 00, which does not exist")
    day, month, yy = int(text[6:8]), int(text[8:10]), int(text[10:12])
    sex = "M"
    if day > 40:
        day -= 40
        sex = "F"
    try:
        born = date(_century(yy, reference), month, day)
    except ValueError as exc:
        raise NikError(
            "invalid_nik",
            "NIK digits 7-12 are not a real birth date (DDMMYY, day + 40 for women)",
        ) from exc
    serial = int(text[12:16])
    if serial < 1:
        raise NikError("invalid_nik", "NIK serial (last 4 digits) must be 0001 or more")
    return Nik(province, text[2:4], text[4:6], born, sex, serial)


def encode_nik(
    province: str, regency: str, district: str, birth_date: date, sex: str, serial: int
) -> str:
    """Build a NIK from its parts (for test data and the demo)."""
    day = birth_date.day + (40 if sex == "F" else 0)
    return (
        f"{province}{regency}{district}{day:02d}{birth_date.month:02d}"
        f"{birth_date.year % 100:02d}{serial:04d}"
    )


def mask_nik(nik: str) -> str:
    """Keep the region prefix and the last two digits, e.g. 3573************01."""
    if len(nik) < 8:
        return "*" * len(nik)
    return nik[:4] + "*" * (len(nik) - 6) + nik[-2:]
