"""Rupiah as a person reads them: one function, used by the CLI, the demo and the ledger's
terminal report."""

from __future__ import annotations

import pytest

from services.domain.money import rupiah


@pytest.mark.parametrize(("amount", "text"), [
    (0, "Rp0"), (16_800, "Rp16,800"), (5_336_800_000, "Rp5,336,800,000"), (-8_400, "Rp-8,400"),
])
def test_rupiah_are_written_with_thousands_separated(amount: int, text: str) -> None:
    assert rupiah(amount) == text
