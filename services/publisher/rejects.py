"""The rows that failed, written back as a CSV the clerk can fix and upload again.

Columns: ``row`` (the row number in the uploaded file), ``errors``, then the file's own
columns with the values as they were (and any value right of them). ``row`` and
``errors`` are ignored on a new upload, so the corrected file can be published as it is.
The file holds personal data: it is created readable by its owner only.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable
from pathlib import Path

from schemas.events import RejectionError
from services.domain.rows import RowRejection
from services.domain.sheet import Table, cell_text

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def describe(errors: Iterable[RejectionError]) -> str:
    return "; ".join(
        f"{e.field}: {e.message} [{e.code}]" if e.field else f"{e.message} [{e.code}]"
        for e in errors
    )


def _safe(text: str) -> str:
    """Keep a spreadsheet from running a value as a formula (the reader strips the ')."""
    return "'" + text if text.startswith(_FORMULA_START) else text


def default_rejects_path(upload: Path) -> Path:
    return upload.with_name(f"{upload.stem}.rejected.csv")


def write_rejects(path: Path, table: Table, rejected: Iterable[RowRejection]) -> int:
    """Write the rejected rows; returns how many. UTF-8 with a BOM, so Excel reads names."""
    count = 0
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with open(descriptor, "w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["row", "errors", *table.headers])
        for item in rejected:
            values = [_safe(cell_text(v)) for v in item.originals]
            while values and values[-1] == "":
                values.pop()
            writer.writerow([item.number, describe(item.errors), *values])
            count += 1
    return count
