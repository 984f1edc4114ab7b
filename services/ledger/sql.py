"""SQL the ledger's queries share, written once.

``CONTRIBUTION_COLUMNS`` are the columns a booked month carries; ledger.contributions and
ledger.held_contributions share them, and the booking, the hold and the release of a hold
copy them from one to the other. The months booked and not cancelled are the view
ledger.live_contributions: every query that means "what the ledger books
now" reads it instead of repeating the anti-join on ledger.cancellations.
"""

from __future__ import annotations

CONTRIBUTION_COLUMNS = (
    "contribution_id", "nik", "period", "programme", "opd_code", "category", "kecamatan",
    "funding_source", "due_date", "amount_idr", "jkk_idr", "jkm_idr", "schedule_id",
    "registration_event_id", "occurred_at", "generation",
)

def contribution_columns(alias: str = "") -> str:
    """The columns as a SQL list, each qualified by ``alias`` when one is given."""
    prefix = f"{alias}." if alias else ""
    return ", ".join(prefix + column for column in CONTRIBUTION_COLUMNS)
