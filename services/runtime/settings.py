"""Settings from the environment (prefix ``IURAN_``); defaults work on the embedded setup."""

from __future__ import annotations

from datetime import UTC, date, datetime
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parents[2]
PLACEHOLDER_SECRETS = {"", "change-me", "changeme", "dev-token", "secret", "password"}


class SettingsError(ValueError):
    """Settings that must not be used (e.g. placeholder secrets in production)."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="IURAN_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    environment: Literal["development", "production"] = "development"
    kafka_bootstrap: str | None = Field(
        default=None, description="host:port[,host:port]; unset = start the embedded broker"
    )
    database_url: str | None = Field(
        default=None, description="postgresql://...; unset = start the embedded PostgreSQL"
    )
    data_dir: Path = Path(".iuran")
    programmes_dir: Path = REPO_ROOT / "deploy" / "programmes"
    partitions: int = Field(default=4, ge=1, le=256)
    replication_factor: int = Field(default=1, ge=1, le=5)
    log_level: str = "INFO"
    log_json: bool = False

    # Kafka client security (passed to aiokafka and Faust).
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = (
        "PLAINTEXT"
    )
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_ssl_cafile: Path | None = None

    # The deployment secret of personal data: seals list cursors and keys the pseudonyms of
    # ids for roles without personal data (services/privacy/keys.py). Unset in development =
    # a documented development secret; production refuses a missing or placeholder one.
    privacy_secret: SecretStr | None = None
    # How long Kafka keeps the records of topics that carry personal data (registrations,
    # their rejections with the original bytes, contribution schedules): long enough for
    # an OPD to fix a rejected row and for a stopped service to catch up, no longer.
    kafka_personal_data_retention_days: int = Field(default=30, ge=1, le=365)

    # Consumer group timeouts: short enough that a dead member's partitions move quickly.
    kafka_session_timeout_seconds: float = 10.0
    kafka_heartbeat_interval_seconds: float = 1.0
    kafka_rebalance_timeout_seconds: float = 10.0
    # How long a fetch may wait for data: the upper bound a quiet topic adds to latency.
    kafka_fetch_max_wait_ms: int = Field(default=50, ge=1, le=5000)

    # HTTP (health, readiness, metrics) per service.
    http_host: str = "127.0.0.1"
    validator_port: int = 8101
    ledger_port: int = 8102
    projector_port: int = 8103
    api_port: int = 8100

    # Batching of the validator: at most this many registrations per PostgreSQL transaction,
    # waiting at most this long for them.
    validator_batch_max: int = Field(default=500, ge=1)
    validator_batch_wait_ms: int = Field(default=50, ge=1)
    # How long a produce request of the Faust services may go unanswered before their
    # producer gives up on it (the validator then sends the batch's outputs again); unset =
    # Faust's default (1200 s).
    kafka_request_timeout_seconds: float | None = Field(default=None, gt=0)

    # Batching of the ledger writer.
    ledger_batch_max: int = Field(default=2000, ge=1)
    ledger_batch_wait_ms: int = Field(default=100, ge=0)

    # The day iuran takes as today (development only): rehearsing a programme year that has
    # passed, as the demo and the tests do. Unset: the clock.
    business_date: date | None = None

    @model_validator(mode="after")
    def _production_needs_real_infrastructure(self) -> Settings:
        if self.environment == "production":
            missing = [
                name
                for name, value in (
                    ("IURAN_KAFKA_BOOTSTRAP", self.kafka_bootstrap),
                    ("IURAN_DATABASE_URL", self.database_url),
                )
                if not value
            ]
            if missing:
                raise SettingsError(
                    f"production needs external infrastructure: set {', '.join(missing)}"
                )
            if self.business_date is not None:
                raise SettingsError("IURAN_BUSINESS_DATE is for rehearsals: production runs "
                                    "on the clock")
            if self.kafka_sasl_password is not None and (
                self.kafka_sasl_password.get_secret_value().lower() in PLACEHOLDER_SECRETS
            ):
                raise SettingsError("IURAN_KAFKA_SASL_PASSWORD is a placeholder")
        return self

    def now(self) -> datetime:
        """The moment iuran takes as now: the clock, moved to IURAN_BUSINESS_DATE (the same
        time of day on that UTC date) when it is set."""
        moment = datetime.now(UTC)
        if self.business_date is None:
            return moment
        return moment + (self.business_date - moment.date())

    def port_of(self, service: str) -> int:
        ports = {
            "validator": self.validator_port,
            "ledger": self.ledger_port,
            "projector": self.projector_port,
            "api": self.api_port,
        }
        return ports[service]


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
