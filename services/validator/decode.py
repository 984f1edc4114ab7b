"""Decoding one raw message of the registrations topic: the event, or the rejections that
say why it is not one."""

from __future__ import annotations

from pydantic import ValidationError

from schemas.events import AnyRegistration, RejectionError, parse_registration
from services.domain import errors as E
from services.domain.errors import rejections_from_validation_error

MAX_MESSAGE_BYTES = 64 * 1024  # a registration is < 1 KiB; anything this big is not one


def decode_registration(
    raw: bytes | str | None, *, max_bytes: int = MAX_MESSAGE_BYTES
) -> tuple[AnyRegistration | None, list[RejectionError]]:
    """Decode one message value: the event, or None and the rejections that say why."""
    if raw is None:
        return None, [E.malformed("message has no value (a tombstone or an empty message)")]
    size = len(raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else raw)
    if size > max_bytes:
        return None, [E.message_too_large(size, max_bytes)]
    if isinstance(raw, bytes):
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError:
            return None, [E.malformed("message is not UTF-8 text")]
    try:
        return parse_registration(raw), []
    except ValidationError as exc:
        return None, rejections_from_validation_error(exc)


