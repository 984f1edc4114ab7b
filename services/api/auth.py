"""Bearer tokens with roles, from configuration (``IURAN_API_TOKENS``).

Roles: ``finance`` and ``auditor`` may see personal data (full NIKs); ``ops`` sees masked
NIKs and cannot export, read discrepancies or look a worker up by NIK. Tokens are compared
in constant time; in development, documented default tokens are used when none is set, in
production a missing or placeholder token refuses to start.
"""

from __future__ import annotations

import hmac
import json
import logging
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.runtime.settings import PLACEHOLDER_SECRETS, Settings, SettingsError

log = logging.getLogger(__name__)

Role = Literal["finance", "ops", "auditor"]
ROLES: tuple[Role, ...] = ("finance", "ops", "auditor")
PERSONAL_DATA_ROLES: frozenset[str] = frozenset({"finance", "auditor"})
MIN_TOKEN_LENGTH = 16

# Development only (IURAN_ENVIRONMENT=development and IURAN_API_TOKENS unset).
DEV_TOKENS: tuple[tuple[str, Role], ...] = (
    ("iuran-dev-finance-token", "finance"),
    ("iuran-dev-ops-token", "ops"),
    ("iuran-dev-auditor-token", "auditor"),
)


class ApiToken(BaseModel):
    """One token: ``{"token": "...", "role": "finance", "name": "bpkad-bi"}`` (or ``roles``:
    a list)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    token: SecretStr
    roles: tuple[Role, ...] = Field(min_length=1)
    name: str = Field(default="unnamed", max_length=64)

    @model_validator(mode="before")
    @classmethod
    def _one_role(cls, data: object) -> object:
        if isinstance(data, dict) and "role" in data:
            data = dict(data)
            role = data.pop("role")
            data.setdefault("roles", [role])
        return data


class ApiSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="IURAN_API_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    tokens: list[ApiToken] = Field(
        default_factory=list,
        description='JSON list of {"token", "role" or "roles", "name"}; unset in development '
                    "= the documented development tokens",
    )
    max_page_size: int = Field(default=1000, ge=1, le=10_000)
    pool_size: int = Field(default=5, ge=1, le=50)


@dataclass(frozen=True)
class Principal:
    name: str
    roles: frozenset[str]

    @property
    def personal_data(self) -> bool:
        return bool(self.roles & PERSONAL_DATA_ROLES)

    @property
    def role(self) -> str:
        return ",".join(sorted(self.roles))


def load_api_settings(settings: Settings) -> ApiSettings:
    """Read and check the API settings; SettingsError for what must not run."""
    try:
        api = ApiSettings()
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise SettingsError(f"IURAN_API_TOKENS: {where}: {first['msg']}") from None
    except (ValueError, json.JSONDecodeError) as exc:
        raise SettingsError(f"IURAN_API_TOKENS is not a JSON list: {exc}") from None
    if settings.environment == "production":
        if not api.tokens:
            raise SettingsError("production needs IURAN_API_TOKENS (no default token)")
        for item in api.tokens:
            secret = item.token.get_secret_value()
            if (secret.lower() in PLACEHOLDER_SECRETS or len(secret) < MIN_TOKEN_LENGTH
                    or secret in {t for t, _ in DEV_TOKENS}):
                raise SettingsError(
                    f"IURAN_API_TOKENS: token {item.name!r} is a placeholder or shorter than "
                    f"{MIN_TOKEN_LENGTH} characters")
    elif not api.tokens:
        log.warning("IURAN_API_TOKENS is not set: using the development tokens (see "
                    "docs/finance.md); never in production")
        api = api.model_copy(update={"tokens": [
            ApiToken(token=SecretStr(token), roles=(role,), name=f"dev-{role}")
            for token, role in DEV_TOKENS]})
    return api


class TokenBook:
    """Looks a presented token up among the configured ones in constant time."""

    def __init__(self, tokens: list[ApiToken]) -> None:
        self._tokens = [(t.token.get_secret_value().encode(), t) for t in tokens]

    def principal(self, presented: str) -> Principal | None:
        given = presented.encode()
        found: ApiToken | None = None
        for secret, item in self._tokens:  # no early exit: every token is compared
            if hmac.compare_digest(secret, given) and found is None:
                found = item
        if found is None:
            return None
        return Principal(found.name, frozenset(found.roles))
