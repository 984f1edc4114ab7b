"""The query builder of the finance views: names from the catalogue, values as parameters."""

from __future__ import annotations

import pytest

from services.ledger.views import VIEWS, ViewError, select, view


def test_filters_become_parameters_in_key_order() -> None:
    sql, args = select(VIEWS["contributions"], {
        "programme": "malang-2025", "period_from": "2025-12", "period_to": "2026-02",
        "status": "booked", "nik": None})
    assert sql == (
        "SELECT " + ", ".join(VIEWS["contributions"].columns) + " FROM finance.contributions"
        " WHERE programme = $1 AND period >= $2 AND period <= $3 AND status = $4"
        " ORDER BY period, contribution_id")
    assert args == ["malang-2025", "2025-12", "2026-02", "booked"]


def test_keyset_position_and_limit() -> None:
    sql, args = select(VIEWS["contributions"], {"opd_code": "DISHUB"},
                       after=["2026-01", "6b1c3f0e-5a43-4f7b-9a43-2f1d7e5c9b10"], limit=51)
    assert sql.endswith(
        "WHERE opd_code = $1 AND (period, contribution_id) > ($2::text, $3::uuid)"
        " ORDER BY period, contribution_id LIMIT 51")
    assert args == ["DISHUB", "2026-01", "6b1c3f0e-5a43-4f7b-9a43-2f1d7e5c9b10"]


def test_a_value_never_becomes_sql() -> None:
    sql, args = select(VIEWS["arrears"], {"nik": "1'; DROP TABLE x; --"})
    assert "DROP" not in sql and args == ["1'; DROP TABLE x; --"]


def test_unknown_views_and_filters_are_refused() -> None:
    with pytest.raises(ViewError, match="unknown view 'ledger.transfers'"):
        view("ledger.transfers")
    with pytest.raises(ViewError, match="cannot be filtered by opd_code"):
        select(VIEWS["budget_utilisation"], {"opd_code": "DISHUB"})
    with pytest.raises(ViewError, match="cursor"):
        select(VIEWS["contributions"], {}, after=["2026-01"])


def test_every_view_orders_by_a_key_it_exports() -> None:
    for spec in VIEWS.values():
        assert {c for c, _ in spec.key} <= set(spec.columns), spec.name
        assert spec.personal == ("nik" in spec.columns), spec.name
