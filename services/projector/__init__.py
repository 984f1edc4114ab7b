"""The coverage projector: running totals of covered workers and booked rupiah."""
