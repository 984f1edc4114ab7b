"""API tokens from configuration: roles, development defaults, refusal in production."""

from __future__ import annotations

import json

import pytest

from services.api.auth import DEV_TOKENS, TokenBook, load_api_settings
from services.runtime.settings import Settings, SettingsError


def settings(environment: str) -> Settings:
    return Settings(environment=environment, kafka_bootstrap="k:9092",  # type: ignore[arg-type]
                    database_url="postgresql://x/y")


def test_tokens_come_from_json_with_a_role_or_roles(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IURAN_API_TOKENS", json.dumps([
        {"token": "a" * 32, "role": "finance", "name": "bpkad"},
        {"token": "b" * 32, "roles": ["ops", "auditor"]},
    ]))
    api = load_api_settings(settings("production"))
    book = TokenBook(api.tokens)
    finance = book.principal("a" * 32)
    both = book.principal("b" * 32)
    assert finance is not None and (finance.name, finance.roles) == ("bpkad", {"finance"})
    assert finance.personal_data
    assert both is not None and both.roles == {"ops", "auditor"} and both.personal_data
    assert book.principal("a" * 31) is None
    assert book.principal("") is None


def test_ops_alone_has_no_personal_data(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IURAN_API_TOKENS", json.dumps([{"token": "c" * 20, "role": "ops"}]))
    principal = TokenBook(load_api_settings(settings("production")).tokens).principal("c" * 20)
    assert principal is not None and not principal.personal_data


@pytest.mark.parametrize(("value", "message"), [
    (None, "production needs IURAN_API_TOKENS"),
    ("[]", "production needs IURAN_API_TOKENS"),
    ('[{"token": "change-me", "roles": ["ops"]}]', "placeholder"),
    ('[{"token": "short", "role": "ops"}]', "shorter than 16"),
    (json.dumps([{"token": DEV_TOKENS[0][0], "role": "finance"}]), "placeholder"),
    ('[{"token": "x' + "y" * 20 + '", "role": "admin"}]', "IURAN_API_TOKENS"),
    ("not json", "IURAN_API_TOKENS"),
])
def test_production_refuses_missing_or_placeholder_tokens(
    monkeypatch: pytest.MonkeyPatch, value: str | None, message: str
) -> None:
    if value is None:
        monkeypatch.delenv("IURAN_API_TOKENS", raising=False)
    else:
        monkeypatch.setenv("IURAN_API_TOKENS", value)
    with pytest.raises(SettingsError, match=message):
        load_api_settings(settings("production"))


def test_development_falls_back_to_the_documented_tokens(
    monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("IURAN_API_TOKENS", raising=False)
    book = TokenBook(load_api_settings(settings("development")).tokens)
    for token, role in DEV_TOKENS:
        principal = book.principal(token)
        assert principal is not None and principal.roles == {role}
