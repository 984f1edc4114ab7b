"""How an amount of money is written for a person: integer rupiah, thousands separated."""

from __future__ import annotations


def rupiah(amount: int) -> str:
    """``Rp16,800`` for 16800 (``Rp-16,800`` for a negative amount)."""
    return f"Rp{amount:,}"
