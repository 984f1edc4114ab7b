"""The record of processing (UU 27/2022 art. 31): one append-only row in
``privacy.personal_data_access`` per API response, export or CLI command that reads
personal data: who (token name or OS user, role), when, through what (endpoint, command),
with which filters, which NIKs (or how many, for a bulk read) and for what purpose."""

from __future__ import annotations

import getpass
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Literal

import asyncpg

Channel = Literal["api", "cli", "export"]
# A read of more NIKs than this lists none of them: its filters and count say what it read.
MAX_LISTED_NIKS = 1000
DEFAULT_PURPOSE = "administration of the programme (a public service)"
MAX_PURPOSE_CHARS = 500
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_NIK_RUN = re.compile(r"(?<!\d)\d{16}(?!\d)")


def purpose_of(given: str | None) -> str:
    """The purpose a reader stated (trimmed, without control characters), or the default."""
    text = _CONTROL.sub(" ", given or "").strip()[:MAX_PURPOSE_CHARS]
    return text or DEFAULT_PURPOSE


def cli_actor() -> str:
    """Who runs a CLI command: the operating system's user."""
    try:
        return f"os:{getpass.getuser()}"
    except (KeyError, OSError):
        return "os:unknown"


class NikTally:
    """The distinct NIKs a read returned, collected row by row (bounded)."""

    def __init__(self) -> None:
        self.niks: set[str] = set()
        self.count = 0
        self._overflow = False

    def add(self, nik: object) -> None:
        if not isinstance(nik, str) or not nik:
            return
        if nik in self.niks:
            return
        self.count += 1
        if not self._overflow:
            self.niks.add(nik)
            if len(self.niks) > MAX_LISTED_NIKS:
                self._overflow = True

    def add_text(self, text: str) -> None:
        """Every run of exactly 16 digits in ``text`` (raw bytes a person could read)."""
        for found in _NIK_RUN.findall(text):
            self.add(found)

    def add_rows(self, rows: Iterable[Any]) -> None:
        for row in rows:
            self.add(row["nik"] if "nik" in row.keys() else None)

    @property
    def listed(self) -> list[str]:
        return [] if self._overflow else sorted(self.niks)


@dataclass(frozen=True)
class Access:
    actor: str
    role: str
    channel: Channel
    what: str
    purpose: str
    filters: dict[str, Any] = field(default_factory=dict)
    masked: bool = False


def _jsonable(value: object) -> object:
    if isinstance(value, date | datetime):
        return value.isoformat()
    if isinstance(value, list | tuple | set | frozenset):
        return [_jsonable(v) for v in value]
    return value if value is None or isinstance(value, bool | int | float | str) else str(value)


async def record(connection: asyncpg.Pool | asyncpg.Connection, access: Access,
                 tally: NikTally) -> None:
    """Write one row of the access log."""
    filters = {k: _jsonable(v) for k, v in access.filters.items() if v is not None}
    await connection.execute(
        """INSERT INTO privacy.personal_data_access
               (actor, role, channel, what, filters, niks, nik_count, masked, purpose)
           VALUES ($1, $2, $3, $4, $5::jsonb, $6, $7, $8, $9)""",
        access.actor[:200], access.role[:100], access.channel, access.what[:200],
        json.dumps(filters), tally.listed, tally.count, access.masked,
        purpose_of(access.purpose))


COLUMNS = ("id", "at", "actor", "role", "channel", "what", "filters", "niks", "nik_count",
           "masked", "purpose")


async def read(connection: asyncpg.Pool | asyncpg.Connection, *, nik: str | None = None,
               limit: int = 1000) -> list[dict[str, Any]]:
    """Rows of the access log, newest first; with ``nik``, the reads that listed it or
    searched for it, and the bulk reads (no NIKs listed) that may have included it."""
    rows = await connection.fetch(
        f"""SELECT {', '.join(COLUMNS)} FROM privacy.personal_data_access
             WHERE $1::text IS NULL OR niks @> ARRAY[$1::text] OR filters ->> 'nik' = $1
                   OR (cardinality(niks) = 0 AND nik_count > 0 AND filters ->> 'nik' IS NULL)
             ORDER BY at DESC, id DESC LIMIT $2""", nik, limit)
    found = []
    for row in rows:
        item = dict(row)
        item["filters"] = json.loads(item["filters"])
        found.append(item)
    return found
