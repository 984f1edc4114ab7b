"""How a programme is billed, as its file declares it: Malang prepaid for the year on
25 Nov 2025, East Java monthly; broken [billing] sections are refused, naming the key."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from services.domain.programme import ProgrammeConfigError, load_programme
from services.runtime.settings import REPO_ROOT

PROGRAMMES = REPO_ROOT / "deploy" / "programmes"
MALANG = PROGRAMMES / "malang-2025.toml"


def test_malang_prepaid_the_year_from_its_fiscal_year_and_east_java_is_billed_monthly() -> None:
    malang = load_programme(MALANG)
    assert (malang.billing.mode, malang.billing.months) == ("prepaid", 12)
    assert malang.billing.paid_on == date(2025, 11, 25)
    assert (malang.funding_source, malang.fiscal_year) == ("DBHCHT", 2025)
    jatim = load_programme(PROGRAMMES / "jatim-malang-2026.toml")
    assert (jatim.billing.mode, jatim.billing.months, jatim.billing.paid_on) == (
        "monthly", 1, None)


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("months = 12                   # BPU", "months = 2  # BPU", "billing.months"),
        ('mode = "prepaid"', 'mode = "yearly"', "billing.mode"),
        ('paid_on = "2025-11-25"', 'paid_on = "2026-01-05"', "outside fiscal_year 2025"),
        ('mode = "prepaid"', 'mode = "monthly"', "for mode = \"prepaid\" only"),
        ('paid_on = "2025-11-25"', 'paid_on = "2025-11-25"\nday = 3', "billing.day"),
    ],
)
def test_a_broken_billing_section_names_the_key(
    tmp_path: Path, old: str, new: str, message: str
) -> None:
    text = MALANG.read_text(encoding="utf-8")
    assert old in text
    path = tmp_path / "broken.toml"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    with pytest.raises(ProgrammeConfigError) as caught:
        load_programme(path)
    assert message in str(caught.value)
