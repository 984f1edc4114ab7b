"""The argument types the CLI's commands share: each turns a bad value into a one-line
message (argparse prints it and exits with 2)."""

from __future__ import annotations

import argparse
import uuid
from collections.abc import Callable
from datetime import date

from services.domain.periods import PeriodError, parse_period


def period(text: str) -> str:
    """A month, YYYY-MM."""
    try:
        parse_period(text)
    except PeriodError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def day(text: str) -> date:
    """A date, YYYY-MM-DD."""
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD)") from None


def identifier(what: str) -> Callable[[str], uuid.UUID]:
    """A UUID naming ``what`` (e.g. "a payment id") in its message."""
    def parse(text: str) -> uuid.UUID:
        try:
            return uuid.UUID(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {what} (UUID)") from None
    return parse


def rupiah(text: str) -> int:
    """A positive whole number of rupiah; 1_000, 1,000 and 1.000 are read as 1000."""
    digits = text.replace("_", "").replace(",", "").replace(".", "")
    if not digits.isdigit() or int(digits) <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive whole number of rupiah")
    return int(digits)


def count(text: str, *, least: int = 0) -> int:
    """A whole number, ``least`` or more; 1_000 and 1,000 are read as 1000."""
    try:
        value = int(text.replace("_", "").replace(",", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < least:
        raise argparse.ArgumentTypeError(f"{value} must be {least} or more")
    return value


def positive(text: str) -> int:
    """A whole number, 1 or more."""
    return count(text, least=1)


def nik(text: str) -> str:
    """A NIK: 16 digits."""
    if len(text) != 16 or not text.isascii() or not text.isdigit():
        raise argparse.ArgumentTypeError("a NIK is exactly 16 digits")
    return text
