"""How much each phase of ``make bench`` does: the issue's sizes, and ``--quick``'s."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Sizes:
    malang: int = 25_808  # Kota Malang's registrations of 25 Nov 2025
    large: int = 250_000  # × 12 months = 3,000,000 contributions
    rate: int = 1000  # registrations per second in the soak
    soak_seconds: int = 300
    sample_every: float = 5.0  # seconds between lag samples in the soak


QUICK = Sizes(malang=1_000, large=3_000, rate=100, soak_seconds=15, sample_every=2.0)
