"""Every Prometheus metric of iuran, defined once so names stay consistent across services.

Naming: base units, counters end in ``_total``, labels of bounded cardinality (service,
topic, programme, OPD, category, error code) and never a NIK.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING

from prometheus_client import Counter, Gauge, Histogram

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from services.domain.programme import Programme

EVENTS_CONSUMED = Counter(
    "iuran_events_consumed_total", "Events read from a topic.", ["service", "topic"]
)
REGISTRATIONS_ACCEPTED = Counter(
    "iuran_registrations_accepted_total",
    "Registration events accepted (a contribution schedule was emitted).",
    ["programme", "event_type"],
)
REGISTRATIONS_REJECTED = Counter(
    "iuran_registrations_rejected_total",
    "Rejection errors sent to the rejected topic, by stable error code.",
    ["code"],
)
REGISTRATIONS_DUPLICATE_EVENTS = Counter(
    "iuran_registrations_duplicate_events_total",
    "Registration events whose event_id was already processed (no new effect).",
)
REGISTRATION_WARNINGS = Counter(
    "iuran_registration_warnings_total",
    "Warnings on accepted registrations (checks that failed without refusing), by code.",
    ["code"],
)
SCHEDULES_EMITTED = Counter(
    "iuran_schedules_emitted_total", "Contribution schedules sent.", ["kind"]
)
CONTRIBUTIONS_BOOKED = Counter(
    "iuran_contributions_booked_total", "Contributions booked in the ledger.", ["programme"]
)
CONTRIBUTIONS_BOOKED_IDR = Counter(
    "iuran_contributions_booked_idr_total", "Rupiah booked as accruals.", ["programme"]
)
CONTRIBUTIONS_DUPLICATE = Counter(
    "iuran_contributions_duplicate_total",
    "Contributions not booked because the worker's month is already booked by another payer.",
    ["programme"],
)
CONTRIBUTIONS_HELD = Counter(
    "iuran_contributions_held_total",
    "Contributions held because they would exceed the budget.",
    ["programme"],
)
CONTRIBUTIONS_UNBOOKABLE = Counter(
    "iuran_contributions_unbookable_total",
    "Contributions the ledger could not place (neither booked, held nor a duplicate), "
    "recorded in ledger.refused_contributions with why, for a person to look at.",
    ["programme"],
)
CONTRIBUTIONS_REVERSED = Counter(
    "iuran_contributions_reversed_total", "Contributions reversed (cancelled).", ["programme"]
)
LEDGER_WRITE_SECONDS = Histogram(
    "iuran_ledger_write_seconds",
    "Time to write one batch to the ledger (one transaction).",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
LEDGER_WRITE_RETRIES = Counter(
    "iuran_ledger_write_retries_total", "Ledger batch writes that failed and were retried."
)
EVENT_AGE_SECONDS = Histogram(
    "iuran_event_age_seconds",
    "Age of a registration event when its contributions are booked.",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800),
)
CONSUMER_LAG = Gauge(
    "iuran_consumer_lag_messages",
    "End offset minus committed offset, per topic and partition.",
    ["service", "topic", "partition"],
)
BUDGET_REMAINING_IDR = Gauge(
    "iuran_budget_remaining_idr",
    "Allocated minus booked rupiah.",
    ["programme", "funding_source", "fiscal_year"],
)
BUDGET_ALLOCATED_IDR = Gauge(
    "iuran_budget_allocated_idr",
    "Allocated rupiah.",
    ["programme", "funding_source", "fiscal_year"],
)
ACTIVE_WORKERS = Gauge(
    "iuran_active_workers", "Workers with at least one covered month.", ["programme"]
)
COVERAGE_RATIO = Gauge(
    "iuran_coverage_ratio", "Covered workers divided by the workforce.", ["programme"]
)
COVERAGE_TARGET_RATIO = Gauge(
    "iuran_coverage_target_ratio", "The RPJPD coverage target.", ["programme"]
)
COVERAGE_MEMBERS = Gauge(
    "iuran_coverage_members",
    "Members in the headline month: the baseline plus workers any programme covers.",
    ["programme"],
)
AWAITING_BUDGET_WORKERS = Gauge(
    "iuran_awaiting_budget_workers",
    "Workers with a month held because the budget has no room (not covered then).",
    ["programme"],
)
BPJS_VERIFIED_WORKERS = Gauge(
    "iuran_bpjs_verified_workers",
    "Active workers whose standing BPJS verdict is verified (covered).",
    ["programme"],
)
BPJS_AWAITING_WORKERS = Gauge(
    "iuran_bpjs_awaiting_workers",
    "Active workers (months booked) BPJS has given no verdict on yet.",
    ["programme"],
)
COVER_ENDING_WORKERS = Gauge(
    "iuran_cover_ending_workers",
    "Workers whose cover ends within the given months (this month included) and that no "
    "other programme continues (finance.cover_expiry).",
    ["programme", "within_months"],
)
PROGRAMME_CALENDAR_MISSING = Gauge(
    "iuran_programme_calendar_missing",
    "1 for each year of a programme that has no official calendar (SKB 3 Menteri) in "
    "deploy/calendar: due dates in it move past weekends only.",
    ["programme", "year"],
)
AWAITING_BUDGET_IDR = Gauge(
    "iuran_awaiting_budget_idr", "Rupiah of the months held for budget.", ["programme"]
)
OUTBOX_PUBLISHED = Counter(
    "iuran_outbox_published_total",
    "Rows of the ledger's outbox delivered to iuran.ledger.v1 and marked published.",
)
OUTBOX_DELAY_SECONDS = Histogram(
    "iuran_outbox_delay_seconds",
    "From the transaction that wrote an outbox row to its delivery to iuran.ledger.v1.",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
LEDGER_EVENTS_APPLIED = Counter(
    "iuran_ledger_events_applied_total",
    "iuran.ledger.v1 events the coverage projector folded into its totals (a repeat of an "
    "event already applied is not counted).",
)
COVERAGE_APPLY_SECONDS = Histogram(
    "iuran_coverage_apply_seconds",
    "Time to fold one batch of iuran.ledger.v1 events into the coverage totals.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
COVERAGE_REFRESH_SECONDS = Histogram(
    "iuran_coverage_refresh_seconds",
    "Time to read every coverage figure from the ledger after it changed.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
BILLS_UNPAID_PAST_DUE = Gauge(
    "iuran_bills_unpaid_past_due", "Issued bills unpaid after their due date.", ["programme"]
)
BPJS_VERDICTS = Counter(
    "iuran_bpjs_verdicts_total", "BPJS verification verdicts recorded by the ledger.",
    ["programme", "status"]
)
BPJS_WORKERS = Gauge(
    "iuran_bpjs_workers", "Workers with a month the programme pays, by BPJS's latest verdict: "
    "verified, rejected or awaiting (no verdict yet).", ["programme", "status"]
)
BPJS_BILL_LINES_UNRECONCILED = Counter(
    "iuran_bpjs_bill_lines_unreconciled_total",
    "Lines of BPJS bills (and months BPJS did not bill) that do not match the ledger, by "
    "reconciliation outcome (finance.bpjs_reconciliation).", ["programme", "outcome"]
)
BPJS_MONTHS_MISSING_AT_BPJS = Gauge(
    "iuran_bpjs_months_missing_at_bpjs",
    "Months the ledger books for workers BPJS verified, in months the programme's BPJS bills "
    "cover, that no BPJS bill has (missing_at_bpjs in finance.bpjs_reconciliation).",
    ["programme"]
)
PAYMENTS_SETTLED = Counter(
    "iuran_payments_settled_total", "Payments that settled a bill.", ["programme"]
)
DISCREPANCIES_OPEN = Gauge(
    "iuran_discrepancies_open", "Payment discrepancies waiting for a person.", ["programme"]
)
CREDITS_CARRIED_OVER_IDR = Gauge(
    "iuran_credits_carried_over_idr",
    "Rupiah held as a credit at BPJS (billed or paid months later deregistered, payment money "
    "carried over) and not refunded: finance.credits with status carried_over.",
    ["programme"],
)
DEAD_LETTERS = Counter(
    "iuran_dead_letters_total",
    "Records a service could not process for a non-transient reason, kept as dead letters "
    "(their offset committed), by stable reason code.",
    ["service", "topic", "reason"],
)
GATEWAY_ROWS = Counter(
    "iuran_gateway_rows_total",
    "Rows of submissions to the registration gateway: sent to Kafka, invalid (refused by the "
    "row checks) or already_sent (an earlier submission sent the same event).",
    ["opd_code", "result"],
)
SERVICE_READY = Gauge("iuran_service_ready", "1 when the service can do its work.", ["service"])


def note_calendars(programmes: Iterable[Programme]) -> None:
    """Say (a warning, once per service start) and export the years of each programme that
    have no official calendar: their due dates move past weekends only."""
    for programme in programmes:
        if programme.calendar_missing:
            log.warning(
                "programme %s has no official calendar for %s (it runs %s to %s): due dates in "
                "those years move past weekends only; add the year's file under "
                "deploy/calendar/ from the SKB 3 Menteri when it is published", programme.id,
                ", ".join(map(str, programme.calendar_missing)), programme.first_period,
                programme.last_period)
        for year in programme.calendar_missing:
            PROGRAMME_CALENDAR_MISSING.labels(programme.id, str(year)).set(1)
