"""The columns of an upload file and the template's example row."""

from __future__ import annotations

# The template's columns, in its order; phone and months may be left out.
COLUMNS = (
    "nik", "full_name", "birth_date", "sex", "category", "kecamatan", "kelurahan", "phone",
    "coverage_start", "months",
)  # fmt: skip
OPTIONAL = frozenset({"phone", "months"})
REQUIRED = tuple(c for c in COLUMNS if c not in OPTIONAL)

# A made-up worker; the upload tool refuses this row so that it is never paid for.
EXAMPLE_ROW: dict[str, str] = {
    "nik": "3573014507900001",
    "full_name": "Siti Aminah",
    "birth_date": "1990-07-05",
    "sex": "F",
    "category": "ojek_online",
    "kecamatan": "Blimbing",
    "kelurahan": "Arjosari",
    "phone": "0812-3456-7890",
    "coverage_start": "2025-12",
    "months": "12",
}
