"""The official calendar: national holidays and cuti bersama (SKB 3 Menteri), one file per
year under ``deploy/calendar/`` and shared by every programme; a due date that falls on one
of these days, or on a weekend, moves to the next working day."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator


class CalendarError(ValueError):
    """A calendar file is missing, unreadable or wrong; the message names the file and key."""


class _Config(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Day(_Config):
    date: date
    name: Annotated[str, Field(min_length=1)]


class YearFile(_Config):
    year: int
    source: Annotated[str, Field(min_length=1)]  # the decree the days come from
    national_holidays: list[Day]
    cuti_bersama: list[Day]

    @model_validator(mode="after")
    def _days_in_year(self) -> YearFile:
        outside = [d.date.isoformat() for d in self.national_holidays + self.cuti_bersama
                   if d.date.year != self.year]
        if outside:
            raise ValueError(f"days outside {self.year}: {', '.join(outside)}")
        return self


@dataclass(frozen=True, slots=True)
class OfficialCalendar:
    days_off: frozenset[date]  # national holidays and cuti bersama (weekends not listed)
    sources: dict[int, str]  # year -> decree

    @property
    def years(self) -> frozenset[int]:
        return frozenset(self.sources)


def _read(path: Path) -> YearFile:
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
        year = YearFile.model_validate(raw)
    except OSError as exc:
        raise CalendarError(f"{path}: cannot read: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise CalendarError(f"{path}: not valid TOML: {exc}") from exc
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or '(file)'}: {e['msg']}"
                             for e in exc.errors())
        raise CalendarError(f"{path}: {problems}") from exc
    if path.stem != str(year.year):
        raise CalendarError(f"{path}: year: {year.year} in a file named {path.name}")
    return year


def load_calendar(directory: Path) -> OfficialCalendar:
    """Every ``YYYY.toml`` of the directory."""
    if not directory.is_dir():
        raise CalendarError(f"{directory}: calendar directory does not exist")
    years = [_read(path) for path in sorted(directory.glob("*.toml"))]
    return OfficialCalendar(
        days_off=frozenset(d.date for y in years for d in y.national_holidays + y.cuti_bersama),
        sources={y.year: y.source for y in years},
    )
