"""Normalising what people type: names, phone numbers, kecamatan, kelurahan and OPD codes.

Place lookups are precomputed once per programme (a programme's places never change while
it is loaded), so checking a registration compares one key per field.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import phonenumbers

from services.domain.programme import Programme

__all__ = [
    "PlaceIndex",
    "canonical_kecamatan",
    "canonical_kelurahan",
    "canonical_opd",
    "normalise_name",
    "normalise_phone",
    "places_of",
]

_PHONE_TEXT = re.compile(r"^\+?[0-9 ().\-/]{7,24}$")
_PLACE_PREFIX = re.compile(r"^(kecamatan|kelurahan|kec|kel|desa)(\.\s*|\s+)", re.IGNORECASE)
_NOT_ALNUM = re.compile(r"[\W_]+")


def normalise_name(raw: str) -> str:
    """NFC, single spaces, no leading or trailing blanks."""
    return " ".join(unicodedata.normalize("NFC", raw).split())


def normalise_phone(raw: str) -> str | None:
    """An Indonesian number in E.164 (+62 and the national digits); None when it is not one.

    Accepts 0812-3456-7890, 0812.3456.7890, (0341) 551234, +62 812 3456 7890,
    +62 (0)812..., 62812..., 0062812... and 812... (a spreadsheet that dropped the 0).
    Whether the digits are an Indonesian mobile or landline number is Google's libphonenumber
    (``phonenumbers``) verdict; here only the spellings above are brought to a form it reads.
    """
    text = raw.strip()
    if not _PHONE_TEXT.match(text):
        return None
    if not text.startswith("+"):
        digits = re.sub(r"[^0-9]", "", text)
        if digits.startswith("0062"):
            text = "+" + digits[2:]
        elif digits.startswith("62"):
            text = "+" + digits
        elif digits.startswith("8"):
            text = "0" + digits
    try:
        number = phonenumbers.parse(text, "ID")
    except phonenumbers.NumberParseException:
        return None
    if number.country_code != 62 or not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


@functools.lru_cache(maxsize=4096)  # the spellings people type repeat: each keyed once
def _place_key(name: str) -> str:
    text = unicodedata.normalize("NFKC", name).strip()
    stripped = _PLACE_PREFIX.sub("", text)
    return _NOT_ALNUM.sub("", (stripped or text).casefold())



@dataclass(frozen=True, slots=True)
class PlaceIndex:
    """A programme's kecamatan, kelurahan and OPD codes by their comparison keys."""

    kecamatan: dict[str, str]  # key → canonical kecamatan
    kelurahan: dict[str, dict[str, str]]  # canonical kecamatan → key → canonical kelurahan
    opds: dict[str, str]  # casefolded code → canonical code

    def kecamatan_of_kelurahan(self, name: str) -> list[str]:
        """Every kecamatan that has a kelurahan of this name."""
        wanted = _place_key(name)
        return [k for k, names in self.kelurahan.items() if wanted in names]


def _by_key(names: Iterable[str], key: Callable[[str], str]) -> dict[str, str]:
    """Names by their comparison key; the first of two names with one key wins."""
    found: dict[str, str] = {}
    for name in names:
        found.setdefault(key(name), name)
    return found


_INDEXES: dict[int, tuple[Programme, PlaceIndex]] = {}


def places_of(programme: Programme) -> PlaceIndex:
    """The place index of a programme, built on first use."""
    cached = _INDEXES.get(id(programme))
    if cached is not None and cached[0] is programme:
        return cached[1]
    index = PlaceIndex(
        kecamatan=_by_key(programme.kecamatan, _place_key),
        kelurahan={k: _by_key(names, _place_key) for k, names in programme.kecamatan.items()},
        opds=_by_key(programme.opds, str.casefold),
    )
    _INDEXES[id(programme)] = (programme, index)
    return index


def canonical_kecamatan(programme: Programme, name: str) -> str | None:
    """The programme's spelling of a kecamatan; tolerant of case, spacing, hyphens and a
    'Kec.'/'Kecamatan' prefix."""
    return places_of(programme).kecamatan.get(_place_key(name))


def canonical_kelurahan(programme: Programme, kecamatan: str, name: str) -> str | None:
    return places_of(programme).kelurahan.get(kecamatan, {}).get(_place_key(name))


def canonical_opd(programme: Programme, code: str) -> str | None:
    return places_of(programme).opds.get(code.strip().casefold())
