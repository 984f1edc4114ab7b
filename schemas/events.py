"""Pydantic v2 models of every v1 event. The single source of truth for the contract."""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from typing import Annotated, Literal
from uuid import UUID

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    model_validator,
)

TOPIC_REGISTRATIONS = "iuran.registrations.v1"
TOPIC_REJECTED = "iuran.registrations.rejected.v1"
TOPIC_CONTRIBUTIONS = "iuran.contributions.v1"
TOPIC_PAYMENTS = "iuran.payments.v1"
TOPIC_COVERAGE = "iuran.coverage.v1"
TOPIC_LEDGER = "iuran.ledger.v1"
TOPIC_BPJS_VERIFICATIONS = "iuran.bpjs.verifications.v1"
TOPIC_BPJS_BILLS = "iuran.bpjs.bills.v1"

Period = Annotated[
    str,
    StringConstraints(pattern=r"^[0-9]{4}-(0[1-9]|1[0-2])$"),
    Field(description="A calendar month, YYYY-MM.", examples=["2025-12"]),
]
# The bounds the ledger's tables enforce, checked at the edge so that a bad event is rejected
# with a code instead of failing in SQL: no NUL character in text (PostgreSQL text cannot
# hold one), amounts within BIGINT, a schedule's NIK 16 ASCII digits.
INT64_MAX = 2**63 - 1
NO_NUL = r"^[^\x00]*$"
ScheduleNik = Annotated[
    str,
    StringConstraints(pattern=r"^[0-9]{16}$"),
    Field(description="Nomor Induk Kependudukan: 16 digits.", examples=["3573014507900001"]),
]
Code = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=NO_NUL)]
# A registration's NIK is checked digit by digit by the rules (invalid_nik says what is wrong);
# the contract only keeps out what no NIK can be and the registry cannot store.
Nik = Annotated[
    str,
    StringConstraints(max_length=64, pattern=NO_NUL),
    Field(
        description="Nomor Induk Kependudukan: 16 digits PPKKSSDDMMYYNNNN.",
        examples=["3573014507900001"],
    ),
]
Rupiah = Annotated[int, Field(ge=0, description="Integer rupiah.")]
BigintRupiah = Annotated[int, Field(ge=0, le=INT64_MAX, description="Integer rupiah.")]
PositiveRupiah = Annotated[
    int, Field(gt=0, le=INT64_MAX, description="Integer rupiah, more than zero.")]


class Category(StrEnum):
    OJEK_ONLINE = "ojek_online"
    BURUH_PABRIK = "buruh_pabrik"
    LINMAS = "linmas"
    SOPIR_ANGKOT = "sopir_angkot"
    KELOMPOK_TANI = "kelompok_tani"
    UMKM = "umkm"
    BPU_LAINNYA = "bpu_lainnya"


class _Event(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class Worker(_Event):
    nik: Nik
    full_name: Annotated[str, StringConstraints(max_length=200, pattern=NO_NUL)]
    birth_date: date
    sex: Literal["M", "F"]
    category: Category
    kecamatan: Code
    kelurahan: Code
    phone: Annotated[str, StringConstraints(max_length=32, pattern=NO_NUL)] | None = None


class _RegistrationBase(_Event):
    event_id: UUID = Field(description="Chosen by the publisher; the idempotency key.")
    schema_version: Literal[1] = Field(default=1, description="Version of this contract.")
    occurred_at: AwareDatetime
    opd_code: Code = Field(description="The city agency (OPD) that registers the worker.")
    programme: Code = Field(description="Id of a programme configuration, e.g. malang-2025.")


class WorkerRegistered(_RegistrationBase):
    event_type: Literal["registered"]
    worker: Worker
    coverage_start: Period
    months: int = Field(default=12, ge=1, le=12)


class WorkerDeregistered(_RegistrationBase):
    event_type: Literal["deregistered"]
    nik: Nik
    effective_period: Period = Field(description="First month no longer paid.")
    reason: Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=NO_NUL)]
    reason_code: Literal["deceased"] | None = Field(
        default=None, description="A documented reason that lets a coordinating OPD stop "
                                  "months before the current one: deceased (the worker died "
                                  "on reason_date).")
    reason_date: date | None = Field(
        default=None, description="The date reason_code documents, e.g. the date of death.")


class WorkerCorrection(_Event):
    """The worker's fields a correction replaces; those left out (or null) stay as they are.
    The NIK, sex and category are never corrected: a wrong NIK is a deregistration and a new
    registration."""

    full_name: Annotated[str, StringConstraints(max_length=200, pattern=NO_NUL)] | None = None
    birth_date: date | None = None
    phone: Annotated[str, StringConstraints(max_length=32, pattern=NO_NUL)] | None = None
    kecamatan: Code | None = Field(default=None, description="With kelurahan: the address.")
    kelurahan: Code | None = Field(default=None, description="With kecamatan: the address.")

    @model_validator(mode="after")
    def _something_corrected(self) -> WorkerCorrection:
        if not self.model_dump(exclude_none=True):
            raise ValueError("name at least one field to correct")
        if (self.kecamatan is None) != (self.kelurahan is None):
            raise ValueError("an address is corrected as kecamatan and kelurahan together")
        return self


class WorkerCorrected(_RegistrationBase):
    """The enrolling OPD corrects a registered worker's name, birth date, phone or address
    (rectification, UU 27/2022 art. 30); the earlier values stay as history. No month,
    bill or payment changes."""

    event_type: Literal["corrected"]
    nik: Nik
    corrected: WorkerCorrection
    reason: Annotated[str, StringConstraints(max_length=200, pattern=NO_NUL)] | None = None


AnyRegistration = WorkerRegistered | WorkerDeregistered | WorkerCorrected
RegistrationEvent = Annotated[AnyRegistration, Field(discriminator="event_type")]
_registration_adapter: TypeAdapter[AnyRegistration] = TypeAdapter(RegistrationEvent)


def parse_registration(raw: bytes | str) -> AnyRegistration:
    """Decode one registration event; raises pydantic.ValidationError."""
    return _registration_adapter.validate_json(raw)


def registration_json_schema() -> dict[str, object]:
    return _registration_adapter.json_schema()


class RejectionError(_Event):
    field: str = Field(description="Dotted path of the offending field, or '' for the event.")
    code: str = Field(description="Stable machine-readable code, e.g. invalid_nik.")
    message: str = Field(description="What is wrong, in words an OPD clerk can act on.")


class RejectedEvent(_Event):
    original: str = Field(description="The original message value, decoded as text.")
    source_topic: str
    partition: int
    offset: int
    rejected_at: AwareDatetime
    errors: list[RejectionError]
    event_id: str | None = None
    opd_code: str | None = None
    programme: str | None = None
    rejection_id: UUID | None = Field(
        default=None,
        description="Stable id of this rejection: a redelivery of the same message is "
                    "rejected again with the same id, so consumers can ignore the repeat.")


class Components(_Event):
    jkk: BigintRupiah
    jkm: BigintRupiah


class ContributionDue(_Event):
    contribution_id: UUID = Field(
        description="UUIDv5 of programme, NIK and period (and of the generation, from 1 on).")
    period: Period
    due_date: date
    amount_idr: PositiveRupiah
    components: Components
    generation: int = Field(
        default=0, ge=0,
        description="How many earlier enrolments of the worker covered this month and were "
                    "cancelled (deregistered): 0 the first time a month is paid, 1 when it is "
                    "paid again after a deregistration, and so on.")

    @model_validator(mode="after")
    def _components_add_up(self) -> ContributionDue:
        if self.components.jkk + self.components.jkm != self.amount_idr:
            raise ValueError("components.jkk + components.jkm must equal amount_idr")
        return self


class ContributionSchedule(_Event):
    schedule_id: UUID
    kind: Literal["due", "cancelled"]
    nik: ScheduleNik
    programme: Code
    opd_code: Code
    category: Category
    kecamatan: Code
    funding_source: Code
    registration_event_id: UUID
    occurred_at: AwareDatetime | None = Field(
        default=None, description="When the registration event happened (for event age)."
    )
    contributions: list[ContributionDue]
    warnings: list[RejectionError] = Field(
        default_factory=list,
        description="Checks that failed without refusing the registration (stable codes, "
                    "e.g. nik_birth_date_mismatch): for finance and the OPD to look at.")


class PaymentConfirmed(_Event):
    payment_id: UUID
    programme: Code
    period: Period
    amount_idr: PositiveRupiah
    reference: Annotated[str, StringConstraints(min_length=1, max_length=100, pattern=NO_NUL)]
    paid_at: AwareDatetime


class CoverageTotals(_Event):
    active_workers: int
    booked_idr: Rupiah
    contributions_booked: int
    awaiting_budget_workers: int = Field(
        default=0, description="Workers with a month held because the budget has no room "
                               "(not covered in that month).")
    awaiting_budget_contributions: int = 0
    awaiting_budget_idr: Rupiah = 0
    verified_workers: int = Field(
        default=0, description="Active workers whose standing BPJS verdict is verified "
                               "(covered).")
    awaiting_bpjs_workers: int = Field(
        default=0, description="Active workers BPJS has given no verdict on yet.")


class CoverageMonth(_Event):
    period: Period
    covered_workers: int = Field(description="Distinct workers this programme covers.")
    booked_idr: Rupiah
    covered_all_programmes: int = Field(
        default=0, description="Distinct workers any programme run by iuran covers.")
    coverage_ratio: float = Field(
        default=0.0, description="(baseline + covered_all_programmes) / workforce.")
    awaiting_budget_contributions: int = 0
    awaiting_budget_idr: Rupiah = 0


class CoverageSnapshot(_Event):
    as_of: AwareDatetime
    programme: Code
    active_workers: int
    contributions_booked: int
    booked_idr: Rupiah
    paid_idr: Rupiah = Field(
        default=0, description="Rupiah paid to BPJS for the programme: its settled bills "
                               "(finance.budget_utilisation.paid_idr, summed).")
    registered_outside_programme: int = Field(
        default=0, description="The baseline: members no programme run by iuran pays.")
    workforce: int = 0
    coverage_ratio: float = Field(
        default=0.0, description="Share of the workforce covered in headline_period.")
    target_ratio: float = 0.0
    by_opd: dict[str, CoverageTotals] = Field(default_factory=dict)
    by_category: dict[str, CoverageTotals] = Field(default_factory=dict)
    by_kecamatan: dict[str, CoverageTotals] = Field(default_factory=dict)
    goal_ratio: float = Field(default=1.0, description="Universal coverage goal (UCJ).")
    goal_year: int = 2045
    workers_to_target: int = Field(default=0, description="More workers the target needs.")
    workers_to_goal: int = Field(default=0, description="More workers the goal needs.")
    next_year_cost_idr: Rupiah = Field(
        default=0, description="Keeping today's active workers covered for 12 months.")
    awaiting_budget_workers: int = Field(
        default=0, description="Workers with a month held because the budget has no room.")
    awaiting_budget_contributions: int = 0
    awaiting_budget_idr: Rupiah = 0
    verified_workers: int = Field(
        default=0, description="Active workers whose standing BPJS verdict is verified "
                               "(covered).")
    awaiting_bpjs_workers: int = Field(
        default=0, description="Active workers (months booked) BPJS has given no verdict "
                               "on yet.")
    headline_period: Period | None = Field(
        default=None, description="The month coverage_ratio and members are taken at.")
    covered_in_headline_period: int = Field(
        default=0, description="Distinct workers any programme run by iuran covers then.")
    members: int = Field(
        default=0, description="registered_outside_programme + covered_in_headline_period.")
    months: list[CoverageMonth] = Field(default_factory=list)


Periods = Annotated[list[Period], Field(default_factory=list)]


class LedgerWorkerMonths(_Event):
    """One worker's months that a ledger transaction changed, for one OPD, category,
    kecamatan and monthly amount: the periods of each kind of change."""

    nik: ScheduleNik
    opd_code: str = Field(description="The OPD that enrolled the worker, as booked.")
    category: str
    kecamatan: str
    amount_idr: PositiveRupiah = Field(description="The monthly amount of these months.")
    booked: Periods = Field(description="Months booked (held months released now included).")
    cancelled: Periods = Field(
        description="Booked months cancelled before they were billed (the booking reversed).")
    credited: Periods = Field(
        description="Booked months cancelled after they were billed: a credit at BPJS.")
    held: Periods = Field(description="Months held (no room in the budget, no allocation, or "
                                      "waiting for an earlier enrolment's cancellation).")
    released: Periods = Field(description="Held months booked now (also in booked).")
    held_cancelled: Periods = Field(description="Held months cancelled, never booked.")
    held_duplicate: Periods = Field(
        description="Held months found paid by another enrolment, never booked.")


class LedgerBillSettled(_Event):
    bill_id: UUID
    period: Period
    amount_idr: BigintRupiah = Field(description="The bill's amount, now paid to BPJS.")


class LedgerBpjsVerdict(_Event):
    """A worker's standing BPJS verdict, as the ledger recorded it (the latest by
    ``verified_at``): a consumer keeps the one with the latest ``verified_at``."""

    nik: ScheduleNik
    status: Literal["verified", "rejected"]
    verified_at: AwareDatetime


class LedgerEvent(_Event):
    """What one ledger transaction committed for one programme, relayed from the ledger's
    outbox (ledger.outbox). Delivered at least once: apply each ``outbox_id`` once."""

    outbox_id: int = Field(ge=1, le=INT64_MAX,
                           description="Stable id of the outbox row; the idempotency key.")
    schema_version: Literal[1] = Field(default=1, description="Version of this contract.")
    programme: Code
    recorded_at: AwareDatetime = Field(description="When the transaction wrote it.")
    workers: list[LedgerWorkerMonths] = Field(default_factory=list)
    bills_settled: list[LedgerBillSettled] = Field(default_factory=list)
    bpjs_verdicts: list[LedgerBpjsVerdict] = Field(
        default_factory=list, description="Workers whose standing BPJS verdict the "
                                          "transaction recorded (verified or rejected).")


Kpj = Annotated[
    str,
    StringConstraints(pattern=r"^[0-9A-Za-z]{6,20}$"),
    Field(description="BPJS Ketenagakerjaan participant number (nomor KPJ).",
          examples=["25081234567"]),
]
Reason = Annotated[str, StringConstraints(min_length=1, max_length=500, pattern=NO_NUL)]


class BpjsVerification(_Event):
    """BPJS's verdict on one submitted worker: verified (a KPJ and the first month BPJS
    covers) or rejected (BPJS's reason code and its own words)."""

    verification_id: UUID = Field(description="The idempotency key of this verdict.")
    schema_version: Literal[1] = Field(default=1, description="Version of this contract.")
    programme: Code
    nik: ScheduleNik
    status: Literal["verified", "rejected"]
    kpj: Kpj | None = Field(default=None, description="Participant number, when verified.")
    effective_period: Period | None = Field(
        default=None, description="First month BPJS covers, when verified.")
    reason_code: Code | None = Field(default=None, description="BPJS's code, when rejected.")
    reason: Reason | None = Field(default=None,
                                  description="BPJS's own words, when rejected (verbatim).")
    verified_at: AwareDatetime = Field(description="When BPJS decided; the later verdict "
                                                   "for a worker supersedes the earlier.")

    @model_validator(mode="after")
    def _verdict_complete(self) -> BpjsVerification:
        if self.status == "verified" and (self.kpj is None or self.effective_period is None):
            raise ValueError("a verified worker needs kpj and effective_period")
        if self.status == "rejected" and (self.reason_code is None or self.reason is None):
            raise ValueError("a rejected worker needs reason_code and reason")
        return self


class BpjsBillLine(_Event):
    nik: ScheduleNik
    kpj: Kpj | None = None
    period: Period
    jkk_idr: BigintRupiah
    jkm_idr: BigintRupiah
    jht_idr: BigintRupiah | None = Field(default=None, description="Old-age savings, if billed.")
    amount_idr: BigintRupiah

    @model_validator(mode="after")
    def _components_add_up(self) -> BpjsBillLine:
        if self.jkk_idr + self.jkm_idr + (self.jht_idr or 0) != self.amount_idr:
            raise ValueError("jkk_idr + jkm_idr + jht_idr must equal amount_idr")
        return self


class BpjsBill(_Event):
    """A bill as BPJS issues it, reconciled line by line against the ledger."""

    bpjs_bill_id: Annotated[str, StringConstraints(min_length=1, max_length=100,
                                                   pattern=NO_NUL)]
    schema_version: Literal[1] = Field(default=1, description="Version of this contract.")
    programme: Code
    period: Period = Field(description="The bill's month (the first, for prepaid months).")
    issued_at: AwareDatetime
    lines: list[BpjsBillLine] = Field(min_length=1)
