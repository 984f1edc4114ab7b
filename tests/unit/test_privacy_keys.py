"""The deployment secret's keys: sealed cursors that only their own list opens, keyed
pseudonyms of ids, and no placeholder secret in production."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import SecretStr

from services.privacy.keys import DEV_SECRET, CursorError, PrivacyKeys, privacy_keys
from services.runtime.settings import Settings, SettingsError

KEYS = PrivacyKeys.from_secret("a-test-secret-of-more-than-32-characters")


@given(st.lists(st.text(max_size=40), min_size=1, max_size=5))
def test_a_cursor_opens_to_its_values_for_its_own_list(values: list[str]) -> None:
    assert KEYS.open(KEYS.seal(values, "arrears"), "arrears") == values


def test_a_cursor_shows_nothing_of_its_values() -> None:
    cursor = KEYS.seal(["malang-2025", "3573014507900001"], "arrears")
    assert "3573" not in cursor and "malang" not in cursor
    assert cursor != KEYS.seal(["malang-2025", "3573014507900001"], "arrears")


@pytest.mark.parametrize("change", [
    lambda c: c[:-2] + ("A" if c[-2] != "A" else "B") + c[-1],
    lambda c: c[:10],
    lambda c: "",
    lambda c: "!!!" + c,
])
def test_a_changed_cursor_is_refused(change: object) -> None:
    cursor = KEYS.seal(["2025-12", str(uuid.uuid4())], "contributions")
    with pytest.raises(CursorError):
        KEYS.open(change(cursor), "contributions")  # type: ignore[operator]


def test_a_cursor_of_another_list_or_deployment_is_refused() -> None:
    cursor = KEYS.seal(["malang-2025", "3573014507900001"], "arrears")
    with pytest.raises(CursorError):
        KEYS.open(cursor, "contributions")
    with pytest.raises(CursorError):
        PrivacyKeys.from_secret(DEV_SECRET).open(cursor, "arrears")


def test_pseudonyms_are_stable_keyed_and_never_the_id() -> None:
    ledger_id = uuid.uuid5(uuid.NAMESPACE_URL, "x")
    once = KEYS.pseudonym("contribution_id", ledger_id)
    assert once == KEYS.pseudonym("contribution_id", ledger_id)
    assert once != ledger_id and once.version == 8
    assert once != PrivacyKeys.from_secret(DEV_SECRET).pseudonym("contribution_id", ledger_id)
    assert once != KEYS.pseudonym("schedule_id", ledger_id)


@pytest.mark.parametrize("secret", [None, "change-me", "short-but-real", DEV_SECRET])
def test_production_refuses_a_missing_or_placeholder_secret(secret: str | None) -> None:
    settings = Settings(environment="production", kafka_bootstrap="k:9092",
                        database_url="postgresql://x/y",
                        privacy_secret=SecretStr(secret) if secret is not None else None)
    with pytest.raises(SettingsError, match="IURAN_PRIVACY_SECRET"):
        privacy_keys(settings)


def test_development_without_a_secret_uses_the_development_secret() -> None:
    keys = privacy_keys(Settings(environment="development", privacy_secret=None))
    assert keys == PrivacyKeys.from_secret(DEV_SECRET)
