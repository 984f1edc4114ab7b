"""The finance views as data: their rows (columns: :mod:`services.ledger.view_rows`), filters
and keys, and one query builder used by the API and by ``iuran export`` (names come from
these tables, values are parameters)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from pydantic import BaseModel

from services.ledger import view_rows as rows


class ViewError(ValueError):
    """An unknown view, or a filter the view does not have."""


@dataclass(frozen=True)
class View:
    name: str
    row: type[BaseModel]  # its fields are the view's columns, in order
    key: tuple[tuple[str, str], ...]  # (column, SQL type): unique, the keyset of paging
    filters: frozenset[str]
    statuses: frozenset[str] = frozenset()
    personal: bool = False  # carries NIKs

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(self.row.model_fields)

    @property
    def relation(self) -> str:
        return f"finance.{self.name}"


_PERIOD_FILTERS = frozenset({"programme", "period_from", "period_to"})

VIEWS: dict[str, View] = {v.name: v for v in (
    View("contributions", rows.Contribution,
         (("period", "text"), ("contribution_id", "uuid")),
         _PERIOD_FILTERS | {"opd_code", "category", "kecamatan", "status", "nik"},
         frozenset({"booked", "held", "cancelled", "billed", "paid"}), personal=True),
    View("monthly_bill", rows.MonthlyBillLine,
         (("programme", "text"), ("period", "text"), ("opd_code", "text")),
         _PERIOD_FILTERS | {"opd_code"}),
    View("bills", rows.Bill,
         (("programme", "text"), ("period", "text"), ("sequence", "integer")),
         _PERIOD_FILTERS | {"status"}, frozenset({"open", "past_due", "paid"})),
    View("budget_utilisation", rows.BudgetUtilisation,
         (("programme", "text"), ("funding_source", "text")),
         frozenset({"programme"})),
    View("budget_changes", rows.BudgetChange,
         (("change_id", "bigint"),),
         frozenset({"programme"})),
    View("outstanding", rows.Outstanding,
         (("programme", "text"), ("period", "text")),
         _PERIOD_FILTERS),
    View("discrepancies", rows.Discrepancy,
         (("recorded_at", "timestamptz"), ("discrepancy_id", "uuid")),
         _PERIOD_FILTERS | {"status"}, frozenset({"open", "resolved"})),
    View("arrears", rows.Arrears,
         (("programme", "text"), ("nik", "text")),
         frozenset({"programme", "opd_code", "category", "kecamatan", "nik", "lapse_risk"}),
         personal=True),
    View("cover_expiry", rows.CoverExpiry,
         (("programme", "text"), ("nik", "text")),
         frozenset({"programme", "opd_code", "category", "kecamatan", "nik",
                    "months_left_max", "renewed_to"}),
         personal=True),
    View("waiting_list", rows.WaitingListEntry,
         (("programme", "text"), ("funding_source", "text"), ("place", "bigint")),
         frozenset({"programme", "opd_code", "category", "kecamatan", "nik", "renewal_of"}),
         personal=True),
    View("worker_history", rows.WorkerHistoryEntry,
         (("nik", "text"), ("period", "text"), ("at", "timestamptz"), ("event", "text"),
          ("contribution_id", "uuid")),
         _PERIOD_FILTERS | {"nik", "opd_code"}, personal=True),
    View("credits", rows.Credit,
         (("recorded_at", "timestamptz"), ("credit_id", "uuid")),
         _PERIOD_FILTERS | {"status"}, frozenset({"carried_over", "refunded"}), personal=True),
    View("cash_reconciliation", rows.CashReconciliation,
         (("programme", "text"),),
         frozenset({"programme"})),
    View("bpjs_members", rows.BpjsMember,
         (("programme", "text"), ("nik", "text")),
         frozenset({"programme", "status", "nik"}), frozenset({"verified", "rejected"}),
         personal=True),
    View("bpjs_reconciliation", rows.BpjsReconciliationLine,
         (("bpjs_bill_id", "text"), ("nik", "text"), ("period", "text"), ("outcome", "text")),
         _PERIOD_FILTERS | {"bpjs_bill_id", "outcome", "nik"}, personal=True),
    View("bpjs_bills", rows.BpjsBillSummary,
         (("programme", "text"), ("bpjs_bill_id", "text")),
         _PERIOD_FILTERS),
    View("account_balances", rows.AccountBalance,
         (("account", "text"),),
         frozenset()),
)}


def view(name: str) -> View:
    try:
        return VIEWS[name]
    except KeyError:
        raise ViewError(f"unknown view {name!r}; known: {', '.join(sorted(VIEWS))}") from None


def select(
    spec: View,
    filters: Mapping[str, object],
    *,
    after: list[str] | None = None,
    limit: int | None = None,
) -> tuple[str, list[object]]:
    """SELECT the view's columns with the given filters (None = not filtered), in key order,
    after a keyset position (values of the key columns, as text) and up to ``limit``."""
    where: list[str] = []
    args: list[object] = []

    def param(value: object) -> str:
        args.append(value)
        return f"${len(args)}"

    for name, value in filters.items():
        if value is None:
            continue
        if name not in spec.filters:
            raise ViewError(f"finance.{spec.name} cannot be filtered by {name}")
        if name == "period_from":
            where.append(f"period >= {param(value)}")
        elif name == "period_to":
            where.append(f"period <= {param(value)}")
        elif name == "months_left_max":
            where.append(f"months_left <= {param(value)}")
        elif isinstance(value, list | tuple | set | frozenset):
            where.append(f"{name} = ANY({param(list(value))}::text[])")
        else:
            where.append(f"{name} = {param(value)}")
    if after is not None:
        if len(after) != len(spec.key):
            raise ViewError("the cursor does not belong to this list")
        columns = ", ".join(c for c, _ in spec.key)
        values = ", ".join(f"{param(v)}::{t}" for v, (_, t) in zip(after, spec.key, strict=True))
        where.append(f"({columns}) > ({values})")
    sql = f"SELECT {', '.join(spec.columns)} FROM {spec.relation}"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY " + ", ".join(c for c, _ in spec.key)
    if limit is not None:
        sql += f" LIMIT {int(limit)}"
    return sql, args
