"""Kafka security from configuration reaches every client: the aiokafka options of the ledger,
the publisher and the admin client (services.runtime.kafka.client_options) and the Faust
credentials of the validator and the projector (services.validator.app.broker_credentials),
for SASL_SSL with SCRAM and for SSL. No broker is needed: the options are what a client is
built with, and each one is handed to a real (unstarted) client."""

from __future__ import annotations

import ssl
from pathlib import Path

import certifi
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth, server_list
from pydantic import ValidationError

from services.domain.programme import load_programmes
from services.projector.app import create_app as create_projector
from services.runtime.kafka import client_options
from services.runtime.settings import Settings
from services.validator.app import broker_credentials
from services.validator.app import create_app as create_validator

CA_FILE = Path(certifi.where())
PASSWORD = "kafka-scram-password-7f3a"  # noqa: S105 - a test value, not a secret


def settings_from_env(monkeypatch: pytest.MonkeyPatch, **env: str) -> Settings:
    """Settings read the way every iuran process reads them: from IURAN_* variables."""
    for name in list(__import__("os").environ):
        if name.startswith("IURAN_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("IURAN_KAFKA_BOOTSTRAP", "kafka-1.internal:9093,kafka-2.internal:9093")
    monkeypatch.setenv("IURAN_DATABASE_URL", "postgresql://iuran@db.internal/iuran")
    for name, value in env.items():
        monkeypatch.setenv(f"IURAN_{name.upper()}", value)
    monkeypatch.chdir(CA_FILE.parent)  # no stray .env file from the working tree
    return Settings()


def verified(context: object) -> ssl.SSLContext:
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname is True
    return context


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-256", "SCRAM-SHA-512"])
async def test_sasl_ssl_with_scram_reaches_the_aiokafka_clients(
    monkeypatch: pytest.MonkeyPatch, mechanism: str
) -> None:
    settings = settings_from_env(
        monkeypatch, kafka_security_protocol="SASL_SSL", kafka_sasl_mechanism=mechanism,
        kafka_sasl_username="iuran-ledger", kafka_sasl_password=PASSWORD,
        kafka_ssl_cafile=str(CA_FILE))
    options = client_options(settings)
    assert options["bootstrap_servers"] == "kafka-1.internal:9093,kafka-2.internal:9093"
    assert options["security_protocol"] == "SASL_SSL"
    assert options["sasl_mechanism"] == mechanism
    assert options["sasl_plain_username"] == "iuran-ledger"
    assert options["sasl_plain_password"] == PASSWORD
    assert verified(options["ssl_context"]).cert_store_stats()["x509_ca"] > 0  # the CA file

    producer = AIOKafkaProducer(**options)
    consumer = AIOKafkaConsumer("iuran.contributions.v1", **options, group_id="iuran-ledger")
    for client in (producer.client, consumer._client):  # noqa: SLF001 - what aiokafka holds
        assert client._security_protocol == "SASL_SSL"  # noqa: SLF001
        assert client._sasl_mechanism == mechanism  # noqa: SLF001
        assert client._sasl_plain_username == "iuran-ledger"  # noqa: SLF001
        assert client._sasl_plain_password == PASSWORD  # noqa: SLF001
        assert client._ssl_context is options["ssl_context"]  # noqa: SLF001
    assert PASSWORD not in repr(settings), "the password shows in the settings' repr"


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_sasl_ssl_with_scram_reaches_the_faust_apps(
    monkeypatch: pytest.MonkeyPatch, mechanism: str
) -> None:
    settings = settings_from_env(
        monkeypatch, kafka_security_protocol="SASL_SSL", kafka_sasl_mechanism=mechanism,
        kafka_sasl_username="iuran-validator", kafka_sasl_password=PASSWORD,
        kafka_ssl_cafile=str(CA_FILE))
    credentials = broker_credentials(settings)
    assert credentials_to_aiokafka_auth(credentials) == {
        "security_protocol": "SASL_SSL", "sasl_mechanism": mechanism,
        "sasl_plain_username": "iuran-validator", "sasl_plain_password": PASSWORD,
        "ssl_context": credentials.ssl_context,
    }
    verified(credentials.ssl_context)
    programmes = load_programmes(settings.programmes_dir)
    for app in (create_validator(settings, programmes), create_projector(settings, programmes)):
        auth = credentials_to_aiokafka_auth(app.conf.broker_credentials)
        assert (auth["security_protocol"], auth["sasl_mechanism"]) == ("SASL_SSL", mechanism)
        assert auth["sasl_plain_password"] == PASSWORD
        assert server_list(app.conf.broker, 9092) == [
            "kafka-1.internal:9093", "kafka-2.internal:9093"]


async def test_ssl_alone_reaches_every_client(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = settings_from_env(monkeypatch, kafka_security_protocol="SSL",
                                 kafka_ssl_cafile=str(CA_FILE))
    options = client_options(settings)
    assert options["security_protocol"] == "SSL"
    verified(options["ssl_context"])
    assert not {k for k in options if k.startswith("sasl")}, "SASL options without SASL"
    producer = AIOKafkaProducer(**options)
    assert producer.client._security_protocol == "SSL"  # noqa: SLF001
    assert producer.client._ssl_context is options["ssl_context"]  # noqa: SLF001

    auth = credentials_to_aiokafka_auth(broker_credentials(settings))
    assert auth["security_protocol"] == "SSL"
    verified(auth["ssl_context"])
    assert not {k for k in auth if k.startswith("sasl")}


def test_sasl_plaintext_uses_no_tls_and_plaintext_uses_no_credentials(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = settings_from_env(
        monkeypatch, kafka_security_protocol="SASL_PLAINTEXT", kafka_sasl_mechanism="PLAIN",
        kafka_sasl_username="iuran", kafka_sasl_password=PASSWORD)
    options = client_options(settings)
    assert (options["security_protocol"], options["sasl_mechanism"]) == ("SASL_PLAINTEXT", "PLAIN")
    assert "ssl_context" not in options
    auth = credentials_to_aiokafka_auth(broker_credentials(settings))
    assert (auth["security_protocol"], auth["ssl_context"]) == ("SASL_PLAINTEXT", None)

    plain = settings_from_env(monkeypatch)
    assert client_options(plain) == {"bootstrap_servers": plain.kafka_bootstrap,
                                     "security_protocol": "PLAINTEXT"}
    assert broker_credentials(plain) is None


def test_production_refuses_a_placeholder_kafka_password(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValidationError, match="IURAN_KAFKA_SASL_PASSWORD is a placeholder"):
        settings_from_env(monkeypatch, environment="production",
                          kafka_security_protocol="SASL_SSL", kafka_sasl_mechanism="SCRAM-SHA-512",
                          kafka_sasl_username="iuran", kafka_sasl_password="change-me")
