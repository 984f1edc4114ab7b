"""The v1 public contract of iuran: event models shared by every service.

The JSON Schema files beside this module are generated from these models
(``python -m schemas.generate``) and checked in for publishers in other languages.
"""

from schemas.events import (
    TOPIC_CONTRIBUTIONS,
    TOPIC_COVERAGE,
    TOPIC_PAYMENTS,
    TOPIC_REGISTRATIONS,
    TOPIC_REJECTED,
    Category,
    Components,
    ContributionDue,
    ContributionSchedule,
    CoverageSnapshot,
    PaymentConfirmed,
    Period,
    RegistrationEvent,
    RejectedEvent,
    RejectionError,
    Worker,
    WorkerCorrected,
    WorkerCorrection,
    WorkerDeregistered,
    WorkerRegistered,
    parse_registration,
)

__all__ = [
    "TOPIC_CONTRIBUTIONS",
    "TOPIC_COVERAGE",
    "TOPIC_PAYMENTS",
    "TOPIC_REGISTRATIONS",
    "TOPIC_REJECTED",
    "Category",
    "Components",
    "ContributionDue",
    "ContributionSchedule",
    "CoverageSnapshot",
    "PaymentConfirmed",
    "Period",
    "RegistrationEvent",
    "RejectedEvent",
    "RejectionError",
    "Worker",
    "WorkerCorrected",
    "WorkerCorrection",
    "WorkerDeregistered",
    "WorkerRegistered",
    "parse_registration",
]
