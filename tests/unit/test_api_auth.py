"""API tokens from configuration: roles, development defaults, refusal in production."""

from __future__ import annotations

import json

import pytest

from services.api.auth import (
    DEV_OPD_TOKENS,
    DEV_TOKENS,
    TokenBook,
    check_opd_tokens,
    load_api_settings,
)
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


def test_an_opd_token_names_its_opd_and_programmes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IURAN_API_TOKENS", json.dumps([
        {"token": "d" * 32, "role": "opd", "opd_code": "DISHUB", "programmes": ["malang-2025"],
         "name": "dishub-simpeg"}]))
    api = load_api_settings(settings("production"))
    check_opd_tokens(api, {"malang-2025": {"DISHUB", "DINSOS"}})
    principal = TokenBook(api.tokens).principal("d" * 32)
    assert principal is not None and principal.roles == {"opd"}
    assert (principal.opd_code, principal.programmes) == ("DISHUB", {"malang-2025"})
    assert not principal.personal_data


@pytest.mark.parametrize(("token", "message"), [
    ({"role": "opd", "programmes": ["malang-2025"]}, "needs opd_code and programmes"),
    ({"role": "opd", "opd_code": "DISHUB"}, "needs opd_code and programmes"),
    ({"roles": ["opd", "finance"], "opd_code": "DISHUB", "programmes": ["malang-2025"]},
     "not combined"),
    ({"role": "finance", "opd_code": "DISHUB"}, "belong to tokens with role opd"),
])
def test_an_opd_token_without_its_opd_is_refused(
    monkeypatch: pytest.MonkeyPatch, token: dict[str, object], message: str
) -> None:
    monkeypatch.setenv("IURAN_API_TOKENS", json.dumps([{"token": "e" * 32, **token}]))
    with pytest.raises(SettingsError, match=message):
        load_api_settings(settings("production"))


@pytest.mark.parametrize(("programmes", "message"), [
    (["jatim-9999"], "unknown programme 'jatim-9999'"),
    (["malang-2025"], "OPD 'DISKOMINFO' may not register in malang-2025"),
])
def test_an_opd_token_must_match_the_programme_configuration(
    monkeypatch: pytest.MonkeyPatch, programmes: list[str], message: str
) -> None:
    monkeypatch.setenv("IURAN_API_TOKENS", json.dumps([
        {"token": "f" * 32, "role": "opd", "opd_code": "DISKOMINFO",
         "programmes": programmes}]))
    api = load_api_settings(settings("production"))
    with pytest.raises(SettingsError, match=message):
        check_opd_tokens(api, {"malang-2025": {"DISHUB"}})


def test_development_opd_tokens_exist_only_in_development(
    monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("IURAN_API_TOKENS", raising=False)
    book = TokenBook(load_api_settings(settings("development")).tokens)
    for token, opd, programmes in DEV_OPD_TOKENS:
        principal = book.principal(token)
        assert principal is not None and principal.roles == {"opd"}
        assert (principal.opd_code, principal.programmes) == (opd, set(programmes))
    monkeypatch.setenv("IURAN_API_TOKENS", json.dumps([
        {"token": DEV_OPD_TOKENS[0][0], "role": "opd", "opd_code": "DISHUB",
         "programmes": ["malang-2025"]}]))
    with pytest.raises(SettingsError, match="placeholder"):
        load_api_settings(settings("production"))
