"""Programme configuration: the rules of one scheme and year, loaded from a TOML file."""

from __future__ import annotations

import logging
import tomllib
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from schemas.events import Category, Period
from services.domain.money import rupiah
from services.domain.official_calendar import CalendarError, load_calendar
from services.domain.periods import parse_period, period_index

log = logging.getLogger(__name__)

BRACKETS_FILE = Path(__file__).with_name("data") / "jkk_bpu_income_brackets.toml"


def _income_brackets(path: Path) -> tuple[int, ...]:
    """The declared incomes a BPU member's JKK may be computed on (see the file's source)."""
    table = tomllib.loads(path.read_text(encoding="utf-8"))
    return tuple(sorted(row["income_idr"] for row in table["brackets"]))


JKK_BPU_INCOME_BRACKETS: tuple[int, ...] = _income_brackets(BRACKETS_FILE)


class ProgrammeConfigError(ValueError):
    """A programme file is missing, unreadable or breaks a rule; the message names the key."""


class _Config(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Premium(_Config):
    declared_income_idr: Annotated[int, Field(gt=0)]
    jkk_rate_basis_points: Annotated[int, Field(ge=0, le=10_000)]
    jkm_flat_idr: Annotated[int, Field(ge=0)]
    due_day: Annotated[int, Field(ge=1, le=28)] = 15

    @field_validator("declared_income_idr")
    @classmethod
    def _a_bracket(cls, value: int) -> int:
        if value not in JKK_BPU_INCOME_BRACKETS:
            raise ValueError(
                f"{rupiah(value)} is not a JKK income bracket for BPU members (PP 44/2015 as "
                f"amended, last by PP 49/2023); brackets: "
                f"{', '.join(rupiah(b) for b in JKK_BPU_INCOME_BRACKETS)} ({BRACKETS_FILE.name})")
        return value

    @property
    def jkk_idr(self) -> int:
        return self.declared_income_idr * self.jkk_rate_basis_points // 10_000

    @property
    def monthly_idr(self) -> int:
        return self.jkk_idr + self.jkm_flat_idr


class DatedPremium(Premium):
    """A premium that applies from ``effective_from`` on (a change of rate, e.g. a new
    income bracket or a new regulation), until a later one."""

    effective_from: Period


class Eligibility(_Config):
    min_age: Annotated[int, Field(ge=0, le=120)]
    max_age: Annotated[int, Field(ge=0, le=120)]
    categories: list[Category]

    @model_validator(mode="after")
    def _ages_ordered(self) -> Eligibility:
        if self.min_age > self.max_age:
            raise ValueError("min_age is greater than max_age")
        return self


class Coverage(_Config):
    """The city's coverage figures that iuran does not compute, each with its source.

    Coverage at a month = (baseline + distinct workers any iuran programme covers in that
    month) / workforce; the headline is the month ``headline_period``."""

    baseline_members: Annotated[int, Field(ge=0)]  # members no iuran programme pays
    baseline_as_of: Annotated[str, Field(pattern=r"^[0-9]{4}(-[0-9]{2}(-[0-9]{2})?)?$")]
    baseline_source: Annotated[str, Field(min_length=1)]
    workforce: Annotated[int, Field(gt=0)]
    workforce_source: Annotated[str, Field(min_length=1)]
    workforce_rough: Annotated[int, Field(ge=0)] = 0  # a rounder figure the source also gives
    workforce_rough_source: str = ""
    headline_period: Period
    as_of: date
    target_ratio: Annotated[float, Field(ge=0, le=1)]
    goal_ratio: Annotated[float, Field(ge=0, le=1)] = 1.0
    goal_year: int = 2045


class Billing(_Config):
    """How the programme's premiums are billed to BPJS.

    ``monthly``: one bill per month, due by the premium's due day. ``prepaid``: at
    enrolment, ``months`` months of each worker (BPU members may pay 1, 3, 6 or 12 months
    ahead) on one bill, due the day it is issued and charged to the fiscal year of that day.
    ``paid_on`` is the documented day the programme's prepaid year was billed and paid."""

    mode: Literal["monthly", "prepaid"] = "monthly"
    months: Literal[1, 3, 6, 12] = 1
    paid_on: date | None = None

    @model_validator(mode="after")
    def _months_fit_the_mode(self) -> Billing:
        if self.mode == "monthly" and (self.months != 1 or self.paid_on is not None):
            raise ValueError("months and paid_on are for mode = \"prepaid\" only")
        return self


class Bpjs(_Config):
    """The programme's loop with BPJS (docs/bpjs.md). ``bill_only_verified``: a month is
    put on a bill only once BPJS verified the worker (a KPJ) and the month is on or after
    the first month BPJS covers; otherwise bills do not wait for BPJS's verdicts (BPJS's bill
    is still reconciled line by line, an unverified worker's line flagged)."""

    bill_only_verified: bool = True


class Privacy(_Config):
    """How long the programme keeps a worker's personal data (docs/privacy.md): name, birth
    date, phone and address are erased ``retention_years`` after the end of the worker's last
    paid month; the NIK stays with the money trail for ``archive_years`` (the financial
    archive's period, never shorter), then is replaced by its keyed pseudonym."""

    retention_years: Annotated[int, Field(ge=1, le=30)] = 10
    archive_years: Annotated[int, Field(ge=1, le=30)] = 10

    @model_validator(mode="after")
    def _archive_outlasts_retention(self) -> Privacy:
        if self.archive_years < self.retention_years:
            raise ValueError("archive_years is never shorter than retention_years")
        return self


RenewalKey = Literal["category", "longest_cover"]


class Renewal(_Config):
    """Who is booked first when a renewal into this programme meets a budget too small for
    every worker (docs/programme.md): renewed workers always come before new enrolments; among
    them the keys of ``priority`` in turn — ``category`` (the order of ``categories``; a
    category not listed comes after the listed ones), ``longest_cover`` (the longest unbroken
    run of covered months first) — and then the NIK, so the order is total and repeatable.
    ``requires_bpjs_verification``: renew only workers BPJS verified."""

    priority: list[RenewalKey] = Field(
        default_factory=lambda: list[RenewalKey](["category", "longest_cover"]))
    categories: list[Category] = Field(default_factory=list)
    requires_bpjs_verification: bool = False

    @model_validator(mode="after")
    def _each_once(self) -> Renewal:
        if len(set(self.priority)) != len(self.priority):
            raise ValueError("priority: each key at most once")
        if len(set(self.categories)) != len(self.categories):
            raise ValueError("categories: each category at most once")
        return self


class Programme(_Config):
    id: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9._-]*$")]
    name: str
    city: str
    region_code: str = ""
    payer: str
    funding_source: Annotated[str, Field(min_length=1, max_length=64)]
    fiscal_year: int
    first_period: Period
    last_period: Period
    months: Annotated[int, Field(ge=1, le=12)] = 12
    budget_idr: Annotated[int, Field(ge=0)]
    premium: Premium  # from first_period on
    # Later rates, each from its month on, in order (a change of premium mid-programme).
    premium_changes: list[DatedPremium] = Field(default_factory=list)
    eligibility: Eligibility
    coverage: Coverage
    opds: dict[str, str]
    # OPDs that may stop any enrolment of the programme (besides the OPD that enrolled it).
    coordinators: list[str] = Field(default_factory=list)
    kecamatan: dict[str, list[str]]
    # National holidays and cuti bersama of the official calendar (not in the programme file:
    # load_programme takes them from the calendar directory).
    holidays: frozenset[date] = Field(default=frozenset(), exclude=True)
    # Years of the programme without an official calendar (holidays unknown: a due date in
    # them moves past weekends only), as load_programme found them.
    calendar_missing: tuple[int, ...] = Field(default=(), exclude=True)
    billing: Billing = Field(default_factory=Billing)
    privacy: Privacy = Field(default_factory=Privacy)
    renewal: Renewal = Field(default_factory=Renewal)
    bpjs: Bpjs = Field(default_factory=Bpjs)
    # The last day a registration is taken (default, and at the latest: the fiscal year's last).
    registration_closes_on: date | None = None
    # The IANA time zone business dates (ages, windows, due dates, fiscal years) are judged in.
    timezone: str = "Asia/Jakarta"

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{value!r} is not an IANA time zone (e.g. Asia/Jakarta)") from None
        return value

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def local(self, moment: datetime) -> datetime:
        """A timezone-aware moment as the programme's wall clock shows it."""
        if moment.tzinfo is None:
            raise ValueError("a naive datetime has no place in the programme's time zone")
        return moment.astimezone(self.zone)

    def today(self, now: datetime | None = None) -> date:
        """The programme's calendar day at ``now`` (default: the clock)."""
        return self.local(now or datetime.now(UTC)).date()

    def registration_closes(self) -> date:
        """The last day (programme time) a registration is taken: an APBD allocation is spent
        in its own fiscal year, the calendar year (UU 17/2003)."""
        year_end = date(self.fiscal_year, 12, 31)
        return min(self.registration_closes_on or year_end, year_end)

    def premium_for(self, period: str) -> Premium:
        """The premium of a month: the latest rate in effect from that month or before."""
        index = period_index(period)
        found: Premium = self.premium
        for change in self.premium_changes:
            if period_index(change.effective_from) <= index:
                found = change
        return found

    def premium_rates(self) -> list[tuple[str, Premium]]:
        """(effective_from, premium) of every rate, the first from first_period."""
        return [(self.first_period, self.premium),
                *((c.effective_from, c) for c in self.premium_changes)]

    @model_validator(mode="after")
    def _consistent(self) -> Programme:
        if period_index(self.last_period) < period_index(self.first_period):
            raise ValueError("last_period is before first_period")
        headline = period_index(self.coverage.headline_period)
        if not period_index(self.first_period) <= headline <= period_index(self.last_period):
            raise ValueError("coverage.headline_period is outside first_period..last_period")
        starts = [period_index(p) for p, _ in self.premium_rates()]
        if starts != sorted(set(starts)) or starts[-1] > period_index(self.last_period):
            raise ValueError("premium_changes: each effective_from after the one before (the "
                             "first after first_period) and not after last_period")
        if not self.opds:
            raise ValueError("opds: at least one OPD must be allowed to register")
        unknown = [c for c in self.coordinators if c not in self.opds]
        if unknown:
            raise ValueError(f"coordinators: {', '.join(unknown)} not among the opds")
        if not self.kecamatan:
            raise ValueError("kecamatan: at least one kecamatan is needed")
        paid_on = self.billing.paid_on
        if paid_on is not None and paid_on.year != self.fiscal_year:
            raise ValueError(f"billing.paid_on: {paid_on} is outside fiscal_year "
                             f"{self.fiscal_year} (a prepaid year is charged to the fiscal "
                             "year of its payment)")
        return self

    @property
    def years(self) -> range:
        """The calendar years of the programme's months."""
        return range(parse_period(self.first_period)[0], parse_period(self.last_period)[0] + 1)

    def canonical_kecamatan(self, name: str) -> str | None:
        wanted = name.strip().casefold()
        for known in self.kecamatan:
            if known.casefold() == wanted:
                return known
        return None

    def canonical_kelurahan(self, kecamatan: str, name: str) -> str | None:
        wanted = name.strip().casefold()
        for known in self.kecamatan.get(kecamatan, []):
            if known.casefold() == wanted:
                return known
        return None


def _describe(error: ValidationError) -> str:
    parts = []
    for item in error.errors():
        key = ".".join(str(p) for p in item["loc"]) or "(file)"
        parts.append(f"{key}: {item['msg']}")
    return "; ".join(parts)


def default_calendar_dir(programmes_dir: Path) -> Path:
    """Where the official calendar lives beside a programme directory (deploy/calendar)."""
    return programmes_dir.parent / "calendar"


def load_programme(path: Path, calendar_dir: Path | None = None) -> Programme:
    """A programme file, with the holidays of the official calendar for its years
    (``calendar_dir``, by default the ``calendar`` directory beside the file's directory)."""
    calendar_dir = calendar_dir or default_calendar_dir(path.parent)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ProgrammeConfigError(f"{path}: cannot read: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ProgrammeConfigError(f"{path}: not valid TOML: {exc}") from exc
    for key in ("calendar", "holidays"):
        if key in raw:
            raise ProgrammeConfigError(
                f"{path}: {key}: holidays are not listed in a programme file; due dates use "
                f"the official calendar, one file per year in {calendar_dir}")
    try:
        programme = Programme.model_validate(raw)
    except ValidationError as exc:
        raise ProgrammeConfigError(f"{path}: {_describe(exc)}") from exc
    try:
        calendar = load_calendar(calendar_dir)
    except CalendarError as exc:
        raise ProgrammeConfigError(f"{path}: calendar: {exc}") from exc
    missing = tuple(y for y in programme.years if y not in calendar.years)
    return programme.model_copy(update={"holidays": calendar.days_off,
                                        "calendar_missing": missing})


def load_programmes(directory: Path, calendar_dir: Path | None = None) -> dict[str, Programme]:
    """Every ``*.toml`` in the directory, by programme id (see :func:`load_programme`)."""
    if not directory.is_dir():
        raise ProgrammeConfigError(f"{directory}: programme directory does not exist")
    programmes: dict[str, Programme] = {}
    for path in sorted(directory.glob("*.toml")):
        programme = load_programme(path, calendar_dir)
        if programme.id in programmes:
            raise ProgrammeConfigError(f"{path}: id: {programme.id!r} is defined twice")
        programmes[programme.id] = programme
    if not programmes:
        raise ProgrammeConfigError(f"{directory}: no programme file (*.toml) found")
    return programmes
