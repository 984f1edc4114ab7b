"""The keys of the deployment secret (``IURAN_PRIVACY_SECRET``): one seals list cursors
(AES-GCM, so a cursor reveals nothing and a changed or foreign one is refused), one makes
keyed pseudonyms (HMAC-SHA256) of the ledger's ids for roles that may not see personal data.

The ledger's ids are UUIDv5 of programme, NIK and period: anyone holding one beside a masked
NIK can hash the few thousand NIKs it could be and find it. A pseudonym needs the secret."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
import os
import uuid
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from services.runtime.settings import PLACEHOLDER_SECRETS, Settings, SettingsError

log = logging.getLogger(__name__)

# Development only (IURAN_ENVIRONMENT=development and IURAN_PRIVACY_SECRET unset): every
# process of a development stack derives the same keys from it.
DEV_SECRET = "iuran-development-privacy-secret-never-in-production"  # noqa: S105 - documented
MIN_SECRET_LENGTH = 32
_NONCE_BYTES = 12


class CursorError(ValueError):
    """A cursor this deployment did not issue for this list, or one that was changed."""


def _derive(secret: bytes, purpose: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=b"iuran privacy v1",
                info=purpose).derive(secret)


@dataclass(frozen=True)
class PrivacyKeys:
    cursor_key: bytes
    pseudonym_key: bytes

    @classmethod
    def from_secret(cls, secret: str) -> PrivacyKeys:
        raw = secret.encode()
        return cls(_derive(raw, b"cursor"), _derive(raw, b"pseudonym"))

    def seal(self, values: list[str], context: str) -> str:
        """An opaque cursor over keyset ``values``, valid only for the list ``context``."""
        nonce = os.urandom(_NONCE_BYTES)
        sealed = AESGCM(self.cursor_key).encrypt(nonce, json.dumps(values).encode(),
                                                 context.encode())
        return base64.urlsafe_b64encode(nonce + sealed).decode().rstrip("=")

    def open(self, cursor: str, context: str) -> list[str]:
        """The keyset values of a cursor :meth:`seal` made for ``context``; CursorError."""
        try:
            raw = base64.b64decode(cursor + "=" * (-len(cursor) % 4), altchars=b"-_",
                                   validate=True)
            if len(raw) <= _NONCE_BYTES:
                raise CursorError("too short")
            plain = AESGCM(self.cursor_key).decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:],
                                                    context.encode())
            values = json.loads(plain)
        except (binascii.Error, ValueError, InvalidTag) as exc:
            raise CursorError("not a cursor this list issued, or it was changed") from exc
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise CursorError("not a cursor this list issued")
        return values

    def pseudonym(self, kind: str, value: object) -> uuid.UUID:
        """A UUID-shaped keyed pseudonym of an id (version 8: never a ledger id itself);
        the same id gives the same pseudonym in this deployment."""
        digest = hmac.new(self.pseudonym_key, f"{kind}:{value}".encode(), hashlib.sha256)
        raw = bytearray(digest.digest()[:16])
        raw[6] = (raw[6] & 0x0F) | 0x80
        raw[8] = (raw[8] & 0x3F) | 0x80
        return uuid.UUID(bytes=bytes(raw))


def privacy_keys(settings: Settings) -> PrivacyKeys:
    """The keys of ``IURAN_PRIVACY_SECRET``; in development without it, of the documented
    development secret; in production a missing, placeholder or short secret is refused."""
    given = settings.privacy_secret.get_secret_value() if settings.privacy_secret else None
    if settings.environment == "production":
        if (given is None or given.lower() in PLACEHOLDER_SECRETS
                or len(given) < MIN_SECRET_LENGTH or given == DEV_SECRET):
            raise SettingsError(
                f"IURAN_PRIVACY_SECRET must be set to a secret of at least {MIN_SECRET_LENGTH} "
                "characters in production (not a placeholder)")
        return PrivacyKeys.from_secret(given)
    if given is None:
        return PrivacyKeys.from_secret(DEV_SECRET)
    return PrivacyKeys.from_secret(given)
