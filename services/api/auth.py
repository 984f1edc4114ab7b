"""Bearer tokens with roles, from configuration (``IURAN_API_TOKENS``).

Roles: ``finance`` and ``auditor`` may see personal data (full NIKs); ``ops`` sees masked
NIKs and cannot export, read discrepancies or look a worker up by NIK; ``opd`` is a city
agency: it names its ``opd_code`` and ``programmes``, may register workers through the
gateway (/v1/registrations) and sees its own workers and submissions, nothing else.
Tokens are compared in constant time; in development, documented default tokens are used
when none is set, in production a missing or placeholder token refuses to start.
"""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.runtime.settings import PLACEHOLDER_SECRETS, Settings, SettingsError

log = logging.getLogger(__name__)

Role = Literal["finance", "ops", "auditor", "opd"]
PERSONAL_DATA_ROLES: frozenset[str] = frozenset({"finance", "auditor"})
MIN_TOKEN_LENGTH = 16

# Development only (IURAN_ENVIRONMENT=development and IURAN_API_TOKENS unset).
DEV_TOKENS: tuple[tuple[str, Role], ...] = (
    ("iuran-dev-finance-token", "finance"),
    ("iuran-dev-ops-token", "ops"),
    ("iuran-dev-auditor-token", "auditor"),
)
# Development only, like DEV_TOKENS: one OPD token per a couple of OPDs (token, OPD,
# programmes), documented in docs/publishing.md.
DEV_OPD_TOKENS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("iuran-dev-opd-dishub-token", "DISHUB", ("malang-2025",)),
    ("iuran-dev-opd-dinsos-token", "DINSOS", ("malang-2025",)),
    ("iuran-dev-opd-disnaker-token", "DISNAKER", ("malang-2025",)),  # a coordinator
)


class ApiToken(BaseModel):
    """One token: ``{"token": "...", "role": "finance", "name": "bpkad-bi"}`` (or ``roles``:
    a list). An OPD's token also names the OPD and the programmes it registers in:
    ``{"token": "...", "role": "opd", "opd_code": "DISHUB", "programmes": ["malang-2025"]}``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    token: SecretStr
    roles: tuple[Role, ...] = Field(min_length=1)
    name: str = Field(default="unnamed", max_length=64)
    opd_code: str | None = Field(default=None, min_length=1, max_length=64)
    programmes: tuple[str, ...] = ()

    @model_validator(mode="before")
    @classmethod
    def _one_role(cls, data: object) -> object:
        if isinstance(data, dict) and "role" in data:
            data = dict(data)
            role = data.pop("role")
            data.setdefault("roles", [role])
        return data

    @model_validator(mode="after")
    def _opd_names_its_agency(self) -> ApiToken:
        if "opd" in self.roles:
            if not self.opd_code or not self.programmes:
                raise ValueError("a token with role opd needs opd_code and programmes")
            if len(self.roles) > 1:
                raise ValueError("role opd is not combined with other roles")
        elif self.opd_code is not None or self.programmes:
            raise ValueError("opd_code and programmes belong to tokens with role opd")
        return self


DEVELOPMENT_SECRETS = frozenset(t for t, _ in DEV_TOKENS) | {t for t, _, _ in DEV_OPD_TOKENS}


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
    max_upload_bytes: int = Field(
        default=5 * 1024 * 1024, ge=1024, le=100 * 1024 * 1024,
        description="largest body POST /v1/registrations accepts (413 beyond)")
    max_upload_rows: int = Field(
        default=5000, ge=1, le=100_000,
        description="most rows or events one submission may hold (422 beyond)")


@dataclass(frozen=True)
class Principal:
    name: str
    roles: frozenset[str]
    opd_code: str | None = None  # the OPD of an ``opd`` token
    programmes: frozenset[str] = frozenset()

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
                    or secret in DEVELOPMENT_SECRETS):
                raise SettingsError(
                    f"IURAN_API_TOKENS: token {item.name!r} is a placeholder or shorter than "
                    f"{MIN_TOKEN_LENGTH} characters")
    elif not api.tokens:
        log.warning("IURAN_API_TOKENS is not set: using the development tokens (see "
                    "docs/finance.md); never in production")
        api = api.model_copy(update={"tokens": [
            *(ApiToken(token=SecretStr(token), roles=(role,), name=f"dev-{role}")
              for token, role in DEV_TOKENS),
            *(ApiToken(token=SecretStr(token), roles=("opd",), name=f"dev-opd-{opd.lower()}",
                       opd_code=opd, programmes=programmes)
              for token, opd, programmes in DEV_OPD_TOKENS)]})
    return api


def check_opd_tokens(api: ApiSettings, opds_of: Mapping[str, Collection[str]]) -> None:
    """Every OPD token names configured programmes and an OPD each of them allows
    (``opds_of``: programme id -> its OPD codes); SettingsError otherwise."""
    for item in api.tokens:
        for programme in item.programmes:
            if programme not in opds_of:
                raise SettingsError(f"IURAN_API_TOKENS: token {item.name!r} names unknown "
                                    f"programme {programme!r}")
            if item.opd_code not in opds_of[programme]:
                raise SettingsError(f"IURAN_API_TOKENS: token {item.name!r}: OPD "
                                    f"{item.opd_code!r} may not register in {programme}")


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
        return Principal(found.name, frozenset(found.roles), found.opd_code,
                         frozenset(found.programmes))
