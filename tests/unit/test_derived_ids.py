"""Derived ids are idempotency keys the ledger has stored: each must stay byte for byte what
it is, whatever builds it. The expected values below are literals, written down once from
the ids iuran derives; a change in how ids are built that changes any of them fails here."""

from __future__ import annotations

from uuid import UUID

import pytest

from services.domain.schedule import (
    IURAN_NAMESPACE,
    contribution_id,
    contributions_for,
    derived_id,
)
from tests.unit.test_registration_rules import MALANG

NIK = "3573014507900001"


def test_the_namespace_is_fixed() -> None:
    assert IURAN_NAMESPACE == UUID("6b1c3f0e-5a43-4f7b-9a43-2f1d7e5c9b10")


@pytest.mark.parametrize(("parts", "expected"), [
    (("schedule", "due", "2f0c1a9e-0000-4000-8000-000000000001"),
     "801723e9-2283-5f2f-b1c6-3c20eb83f5d9"),
    (("contribution", "malang-2025", NIK, "2025-12"), "a9c3eb38-1625-5058-af14-93967d4e8118"),
    (("rejection", "x"), "dc1ec255-d9d8-5ec5-b4d4-2d53f35fc2cf"),
    ((), "0ef9ae17-edc9-53b6-89f9-18093a42490c"),
])
def test_a_derived_id_is_the_one_stored(parts: tuple[str, ...], expected: str) -> None:
    assert derived_id(*parts) == UUID(expected)
    assert derived_id(*parts).bytes == UUID(expected).bytes


@pytest.mark.parametrize(("programme", "nik", "period", "generation", "expected"), [
    ("malang-2025", NIK, "2025-12", 0, "a9c3eb38-1625-5058-af14-93967d4e8118"),
    ("malang-2025", NIK, "2026-03", 1, "07b928b6-11de-52e6-9e42-ee3464e363b6"),
    ("jatim-2026", "3573051203850002", "2026-04", 2, "9b60dcaf-5f4a-5d36-a54a-17c816ff25c3"),
])
def test_a_contribution_id_is_the_one_stored(
    programme: str, nik: str, period: str, generation: int, expected: str
) -> None:
    assert contribution_id(programme, nik, period, generation) == UUID(expected)


def test_a_schedule_carries_the_stored_ids() -> None:
    assert MALANG.id == "malang-2025"
    dues = contributions_for(MALANG, NIK, ["2025-12", "2026-03"], {"2026-03": 1})
    assert [d.contribution_id for d in dues] == [
        UUID("a9c3eb38-1625-5058-af14-93967d4e8118"), UUID("07b928b6-11de-52e6-9e42-ee3464e363b6")]
