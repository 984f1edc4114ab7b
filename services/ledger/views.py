"""The finance views as data: their columns, filters and keys, and one query builder used by
the API and by ``iuran export`` (names come from these tables, values are parameters)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


class ViewError(ValueError):
    """An unknown view, or a filter the view does not have."""


@dataclass(frozen=True)
class View:
    name: str
    columns: tuple[str, ...]
    key: tuple[tuple[str, str], ...]  # (column, SQL type): unique, the keyset of paging
    filters: frozenset[str]
    statuses: frozenset[str] = frozenset()
    personal: bool = False  # carries NIKs

    @property
    def relation(self) -> str:
        return f"finance.{self.name}"


_PERIOD_FILTERS = frozenset({"programme", "period_from", "period_to"})

VIEWS: dict[str, View] = {v.name: v for v in (
    View("contributions",
         ("contribution_id", "nik", "programme", "period", "due_date", "amount_idr", "jkk_idr",
          "jkm_idr", "opd_code", "category", "kecamatan", "funding_source", "status",
          "bill_id", "bill_sequence", "payment_id", "paid_at", "booked_at", "cancelled_at",
          "generation"),
         (("period", "text"), ("contribution_id", "uuid")),
         _PERIOD_FILTERS | {"opd_code", "category", "kecamatan", "status", "nik"},
         frozenset({"booked", "held", "cancelled", "billed", "paid"}), personal=True),
    View("monthly_bill",
         ("programme", "period", "opd_code", "due_date", "workers", "amount_idr", "jkk_idr",
          "jkm_idr", "billed_idr", "paid_idr", "unbilled_idr"),
         (("programme", "text"), ("period", "text"), ("opd_code", "text")),
         _PERIOD_FILTERS | {"opd_code"}),
    View("bills",
         ("bill_id", "programme", "period", "sequence", "due_date", "workers", "amount_idr",
          "issued_at", "issued_by", "status", "payment_id", "payment_reference", "paid_at",
          "lines", "billing", "fiscal_year", "first_period", "last_period"),
         (("programme", "text"), ("period", "text"), ("sequence", "integer")),
         _PERIOD_FILTERS | {"status"}, frozenset({"open", "past_due", "paid"})),
    View("budget_utilisation",
         ("programme", "funding_source", "fiscal_year", "allocated_idr", "booked_idr",
          "paid_idr", "held_idr", "held_contributions", "remaining_idr", "changed_at"),
         (("programme", "text"), ("funding_source", "text")),
         frozenset({"programme"})),
    View("budget_changes",
         ("change_id", "programme", "funding_source", "fiscal_year", "previous_idr",
          "allocated_idr", "raised_by_idr", "source", "reason", "changed_by", "changed_at"),
         (("change_id", "bigint"),),
         frozenset({"programme"})),
    View("outstanding",
         ("programme", "period", "due_date", "contributions", "outstanding_idr", "billed_idr",
          "unbilled_idr", "past_due"),
         (("programme", "text"), ("period", "text")),
         _PERIOD_FILTERS),
    View("discrepancies",
         ("discrepancy_id", "payment_id", "programme", "period", "kind", "expected_idr",
          "paid_idr", "difference_idr", "reference", "detail", "paid_at", "recorded_at",
          "status", "resolution", "resolved_by", "resolved_at", "unapplied_idr", "action",
          "applied_to_bill_id", "applied_idr", "refunded_idr", "carried_over_idr"),
         (("recorded_at", "timestamptz"), ("discrepancy_id", "uuid")),
         _PERIOD_FILTERS | {"status"}, frozenset({"open", "resolved"})),
    View("arrears",
         ("nik", "programme", "opd_code", "category", "kecamatan", "unpaid_months",
          "unpaid_idr", "oldest_unpaid_period", "latest_unpaid_period", "oldest_due_date",
          "held_months", "lapse_risk", "prepaid"),
         (("programme", "text"), ("nik", "text")),
         frozenset({"programme", "opd_code", "category", "kecamatan", "nik", "lapse_risk"}),
         personal=True),
    View("worker_history",
         ("nik", "programme", "period", "contribution_id", "event", "at", "amount_idr",
          "opd_code", "detail", "generation"),
         (("nik", "text"), ("period", "text"), ("at", "timestamptz"), ("event", "text"),
          ("contribution_id", "uuid")),
         _PERIOD_FILTERS | {"nik", "opd_code"}, personal=True),
    View("credits",
         ("credit_id", "source", "contribution_id", "payment_id", "nik", "programme", "period",
          "bill_id", "amount_idr", "status", "recorded_at", "refunded_at", "refund_reason"),
         (("recorded_at", "timestamptz"), ("credit_id", "uuid")),
         _PERIOD_FILTERS | {"status"}, frozenset({"carried_over", "refunded"}), personal=True),
    View("cash_reconciliation",
         ("programme", "payments", "received_idr", "journal_cash_idr", "unapplied_idr",
          "difference_idr", "voided_idr"),
         (("programme", "text"),),
         frozenset({"programme"})),
    View("bpjs_members",
         ("nik", "programme", "kpj", "status", "reason_code", "reason", "effective_period",
          "verified_at", "cancelled_months"),
         (("programme", "text"), ("nik", "text")),
         frozenset({"programme", "status", "nik"}), frozenset({"verified", "rejected"}),
         personal=True),
    View("bpjs_reconciliation",
         ("bpjs_bill_id", "programme", "period", "nik", "kpj", "line_number", "outcome",
          "expected_idr", "billed_idr", "payable_idr"),
         (("bpjs_bill_id", "text"), ("nik", "text"), ("period", "text"), ("outcome", "text")),
         _PERIOD_FILTERS | {"bpjs_bill_id", "outcome", "nik"}, personal=True),
    View("bpjs_bills",
         ("bpjs_bill_id", "programme", "period", "issued_at", "received_at", "lines",
          "billed_idr", "payable_idr", "matched_lines", "unreconciled_lines", "reconciled"),
         (("programme", "text"), ("bpjs_bill_id", "text")),
         _PERIOD_FILTERS),
    View("account_balances",
         ("account", "debit_idr", "credit_idr", "balance_idr"),
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
