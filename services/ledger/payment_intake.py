"""Taking a record of iuran.payments.v1: a payment confirmation the ledger can apply, or the
reason it cannot (kept as a dead letter of the payments topic, for finance to see and
answer; never a registration rejection)."""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import ValidationError

from schemas.events import PaymentConfirmed
from services.domain.money import rupiah

MALFORMED_PAYMENT = "malformed_payment"
IMPLAUSIBLE_AMOUNT = "implausible_amount"


class UntakeablePayment(Exception):  # noqa: N818 - a verdict on a record, not a failure
    """A payment record the ledger cannot take; ``reason`` is a stable code."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def plausibility_bounds(allocations: Mapping[str, int]) -> dict[str, int]:
    """The largest payment each programme can plausibly receive: its allocation (no single
    payment pays more than the programme has), from the programme configuration."""
    return dict(allocations)


def take_payment(value: bytes | None, bounds: Mapping[str, int]) -> PaymentConfirmed:
    """The record's payment confirmation; raises :class:`UntakeablePayment` when it does
    not match the v1 contract (the message names the field and the rule, never a value) or
    its amount is beyond its programme's bound (a programme not configured: the largest
    bound; none configured: no bound)."""
    payment = _decode(value)
    bound = bounds.get(payment.programme, max(bounds.values(), default=None))
    if bound is not None and payment.amount_idr > bound:
        raise UntakeablePayment(
            IMPLAUSIBLE_AMOUNT, f"amount_idr {rupiah(payment.amount_idr)} is more than programme "
                                f"{payment.programme} can receive in one payment "
                                f"({rupiah(bound)}, its allocation)")
    return payment


def _decode(value: bytes | None) -> PaymentConfirmed:
    try:
        return PaymentConfirmed.model_validate_json(value or b"")
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(record)"
        raise UntakeablePayment(
            MALFORMED_PAYMENT, f"payment confirmation does not match the v1 contract: "
                               f"{where}: {first['type']} ({first['msg']})") from None
