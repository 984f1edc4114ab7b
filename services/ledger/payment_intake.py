"""Taking a record of iuran.payments.v1: a payment confirmation the ledger can apply, or the
reason it cannot (kept as a dead letter of the payments topic, for finance to see and
answer; never a registration rejection)."""

from __future__ import annotations

from pydantic import ValidationError

from schemas.events import PaymentConfirmed

MALFORMED_PAYMENT = "malformed_payment"


class UntakeablePayment(Exception):  # noqa: N818 - a verdict on a record, not a failure
    """A payment record the ledger cannot take; ``reason`` is a stable code."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def take_payment(value: bytes | None) -> PaymentConfirmed:
    """The record's payment confirmation; raises :class:`UntakeablePayment` when it does
    not match the v1 contract (the message names the field and the rule, never a value)."""
    try:
        return PaymentConfirmed.model_validate_json(value or b"")
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(record)"
        raise UntakeablePayment(
            MALFORMED_PAYMENT, f"payment confirmation does not match the v1 contract: "
                               f"{where}: {first['type']} ({first['msg']})") from None
