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


def test_a_token_is_compared_in_constant_time_with_every_configured_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """No timing tells how much of a token was right: each presented token is compared with
    hmac.compare_digest against every configured token, the matching one first or last."""
    import hmac

    from services.api import auth

    compared: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def compare_digest(a: bytes, b: bytes) -> bool:
        compared.append((a, b))
        return real(a, b)

    monkeypatch.setattr(auth.hmac, "compare_digest", compare_digest)
    secrets = [c * 32 for c in "abcd"]
    monkeypatch.setenv("IURAN_API_TOKENS", json.dumps(
        [{"token": s, "role": "ops", "name": s[0]} for s in secrets]))
    book = TokenBook(load_api_settings(settings("production")).tokens)
    for presented in (secrets[0], secrets[-1], "a" * 31 + "b", "nope"):
        compared.clear()
        found = book.principal(presented)
        assert sorted(a for a, _ in compared) == [s.encode() for s in secrets], presented
        assert {b for _, b in compared} == {presented.encode()}
        assert (found.name if found else None) == (presented[0] if presented in secrets
                                                   else None)
