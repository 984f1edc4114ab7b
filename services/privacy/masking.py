"""What a row becomes for a reader without personal-data access: the NIK masked and every id
derived from a NIK replaced by its keyed pseudonym (the API's lists and ``iuran export
--masked`` apply the same function)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from services.domain.nik import mask_nik
from services.privacy.keys import PrivacyKeys

# Ids derived from a NIK (UUIDv5 of programme, NIK and period, ...).
DERIVED_IDS = ("contribution_id", "schedule_id")

RowMask = Callable[[dict[str, Any]], dict[str, Any]]


def row_mask(keys: PrivacyKeys) -> RowMask:
    def mask(row: dict[str, Any]) -> dict[str, Any]:
        if row.get("nik") is not None:
            row["nik"] = mask_nik(row["nik"])
        for name in DERIVED_IDS:
            if row.get(name) is not None:
                row[name] = keys.pseudonym(name, row[name])
        return row

    return mask
