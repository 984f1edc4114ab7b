"""Calendar months ("periods", YYYY-MM) and due dates."""

from __future__ import annotations

import functools
import re
from collections.abc import Collection, Iterator
from datetime import date, timedelta

_PERIOD = re.compile(r"^([0-9]{4})-(0[1-9]|1[0-2])$")


class PeriodError(ValueError):
    """A string is not a YYYY-MM month."""


def parse_period(text: str) -> tuple[int, int]:
    match = _PERIOD.match(text)
    if match is None:
        raise PeriodError(f"{text!r} is not a month in the form YYYY-MM")
    return int(match.group(1)), int(match.group(2))


def format_period(year: int, month: int) -> str:
    return f"{year:04d}-{month:02d}"


@functools.lru_cache(maxsize=4096)  # a programme has a few dozen months: parsed once each
def period_index(text: str) -> int:
    """Months since year 0: lets periods be compared and subtracted as integers."""
    year, month = parse_period(text)
    return year * 12 + month - 1


def period_from_index(index: int) -> str:
    return format_period(index // 12, index % 12 + 1)


def period_range(first: str, count: int) -> Iterator[str]:
    start = period_index(first)
    for offset in range(count):
        yield period_from_index(start + offset)


def period_of(day: date) -> str:
    return format_period(day.year, day.month)


def due_date(period: str, due_day: int, holidays: Collection[date]) -> date:
    """The due day of the period, moved to the next working day (not a weekend or holiday)."""
    year, month = parse_period(period)
    day = date(year, month, due_day)
    while day.weekday() >= 5 or day in holidays:
        day += timedelta(days=1)
    return day
