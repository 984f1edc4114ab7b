"""NIK (Nomor Induk Kependudukan): 16 digits PPKKSS DDMMYY NNNN.

Province (2), regency/city (2), kecamatan (2), birth date with day + 40 for women, serial
from 0001. There is no check digit. The region digits must be a regency/city and kecamatan
of the Kemendagri code list in some edition since 2016 (``data/regions.txt``): a NIK keeps
the code it was issued under when a region is later split or renumbered. Where the code
lies is not checked: a Malang resident may hold a NIK issued elsewhere.

Messages of :class:`NikError` never repeat the NIK: they say which part is wrong.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

from schemas.events import AnyRegistration, WorkerRegistered

REGIONS_FILE = Path(__file__).with_name("data") / "regions.txt"


def _load_regions(path: Path) -> dict[str, frozenset[str]]:
    """Kecamatan codes (SS) by regency/city code (PPKK), from ``PPKK SS SS ...`` lines."""
    regions: dict[str, frozenset[str]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#"):
            regency, *districts = line.split()
            regions[regency] = frozenset(districts)
    return regions


# Loaded once: checking a NIK is two dictionary lookups.
REGIONS: dict[str, frozenset[str]] = _load_regions(REGIONS_FILE)
# Dukcapil province codes (38 provinces, including the 2022 Papua splits).
PROVINCE_CODES: frozenset[str] = frozenset(regency[:2] for regency in REGIONS)

INVALID_NIK = "invalid_nik"
UNKNOWN_REGENCY_CODE = "unknown_regency_code"
UNKNOWN_KECAMATAN_CODE = "unknown_kecamatan_code"
NIK_LENGTH = 16
FEMALE_DAY_OFFSET = 40


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

    @property
    def birth_ddmmyy(self) -> tuple[int, int, int]:
        """Day, month and two-digit year as encoded (the century is not in the NIK)."""
        return self.birth_date.day, self.birth_date.month, self.birth_date.year % 100


def _birth_date(day: int, month: int, yy: int, reference: date) -> date:
    """The real date DD-MM-YY that is not after ``reference``: the NIK has no century.

    Tries the latest century first; 29 February of a year ``00`` exists in 2000 only.
    """
    for year in (2000 + yy, 1900 + yy):
        try:
            born = date(year, month, day)
        except ValueError:
            continue
        if born <= reference:
            return born
    raise ValueError("no real date")


def parse_nik(text: str, *, reference: date) -> Nik:
    """Decode a NIK or raise NikError. ``reference`` (e.g. today) resolves the century:
    the birth date is the latest real DD-MM-YY on or before it."""
    if not isinstance(text, str):
        raise NikError(INVALID_NIK, "NIK must be text of 16 digits")
    if len(text) != NIK_LENGTH or not text.isascii() or not text.isdigit():
        raise NikError(
            INVALID_NIK,
            f"NIK must be exactly 16 digits (0-9), no spaces, dots or letters; "
            f"this one has {_describe_length(text)}",
        )
    province = text[0:2]
    if province not in PROVINCE_CODES:
        raise NikError(
            INVALID_NIK,
            f"NIK starts with province code {province}, which does not exist "
            "(first two digits, e.g. 35 for Jawa Timur)",
        )
    if text[2:4] == "00":
        raise NikError(INVALID_NIK, "NIK digits 3-4 (regency/city code) cannot be 00")
    if text[4:6] == "00":
        raise NikError(INVALID_NIK, "NIK digits 5-6 (district code) cannot be 00")
    _check_region(text[0:4], text[4:6])
    day, month, yy = int(text[6:8]), int(text[8:10]), int(text[10:12])
    sex = "M"
    if day > FEMALE_DAY_OFFSET:
        day -= FEMALE_DAY_OFFSET
        sex = "F"
    try:
        born = _birth_date(day, month, yy, reference)
    except ValueError as exc:
        raise NikError(
            INVALID_NIK,
            "NIK digits 7-12 are not a real birth date (DDMMYY, day + 40 for women)",
        ) from exc
    serial = int(text[12:16])
    if serial < 1:
        raise NikError(INVALID_NIK, "NIK serial (last 4 digits) must be 0001 or more")
    return Nik(province, text[2:4], text[4:6], born, sex, serial)


def _check_region(regency: str, district: str) -> None:
    districts = REGIONS.get(regency)
    if districts is None:
        raise NikError(
            UNKNOWN_REGENCY_CODE,
            f"NIK digits 3-4 are not a regency/city of province {regency[:2]}: "
            f"{regency[:2]}.{regency[2:]} is in no edition of the Kemendagri region code list "
            "since 2016; check the NIK against the KTP",
        )
    if district not in districts:
        raise NikError(
            UNKNOWN_KECAMATAN_CODE,
            f"NIK digits 5-6 are not a kecamatan of regency/city {regency[:2]}.{regency[2:]} "
            "in any edition of the Kemendagri region code list since 2016; check the NIK "
            "against the KTP",
        )


def _describe_length(text: str) -> str:
    digits = sum(ch.isascii() and ch.isdigit() for ch in text)
    other = len(text) - digits
    parts = [f"{digits} digit{'s' if digits != 1 else ''}"]
    if other:
        parts.append(f"{other} other character{'s' if other != 1 else ''}")
    return " and ".join(parts)


def encode_nik(
    province: str, regency: str, district: str, birth_date: date, sex: str, serial: int
) -> str:
    """Build a NIK from its parts (for test data and the demo)."""
    if sex not in ("M", "F"):
        raise ValueError("sex must be 'M' or 'F'")
    if not 0 <= serial <= 9999:
        raise ValueError("serial must fit in 4 digits")
    for name, part in (("province", province), ("regency", regency), ("district", district)):
        if len(part) != 2 or not part.isdigit():
            raise ValueError(f"{name} must be 2 digits")
    day = birth_date.day + (FEMALE_DAY_OFFSET if sex == "F" else 0)
    return (
        f"{province}{regency}{district}{day:02d}{birth_date.month:02d}"
        f"{birth_date.year % 100:02d}{serial:04d}"
    )


def nik_matches_birth_date(nik: Nik, birth_date: date) -> bool:
    """Day, month and two-digit year agree (the NIK does not say the century)."""
    return nik.birth_ddmmyy == (birth_date.day, birth_date.month, birth_date.year % 100)


def mask_nik(nik: str) -> str:
    """Keep the region prefix and the last two digits, e.g. 3573************01."""
    if len(nik) < 8:
        return "*" * len(nik)
    return nik[:4] + "*" * (len(nik) - 6) + nik[-2:]


def nik_of(event: AnyRegistration) -> str:
    """The NIK a registration event is about: its worker's for a registration, its own for
    a deregistration or a correction. It is the event's Kafka key (it decides the partition)."""
    return event.worker.nik if isinstance(event, WorkerRegistered) else event.nik
