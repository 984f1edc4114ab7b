"""Read-side helpers over the finance views: the summary the demo prints and the gauges the
ledger exports to Prometheus."""

from __future__ import annotations

from typing import Any

import asyncpg

from services.domain.money import rupiah
from services.domain.programme import Programme
from services.ledger.cover import refresh_cover_gauge
from services.runtime import metrics


async def finance_summary(connection: asyncpg.Connection, config: Programme) -> dict[str, Any]:
    """The first monthly bill and the budget utilisation of one programme, from the views.

    Shape (money in integer rupiah, dates as ``datetime.date``)::

        {"programme": str,
         "first_bill": None | {"period": "YYYY-MM", "due_date": date, "workers": int,
                               "amount_idr": int, "jkk_idr": int, "jkm_idr": int,
                               "billed_idr": int, "paid_idr": int,
                               "by_opd": [{"opd_code": str, "workers": int,
                                           "amount_idr": int}, ...]},   # largest first
         "budget": [{"funding_source": str, "fiscal_year": int | None,
                     "allocated_idr": int, "booked_idr": int, "paid_idr": int,
                     "held_idr": int, "held_contributions": int,
                     "remaining_idr": int}, ...],
         "contributions": {"booked": int, "billed": int, "paid": int, "held": int,
                           "cancelled": int},
         "prepaid_bills": [{"sequence": int, "period": "YYYY-MM", "due_date": date,
                            "workers": int, "lines": int, "months_min": int,
                            "months_max": int, "amount_idr": int, "status": str,
                            "paid_on": date | None, "payment_reference": str | None,
                            "fiscal_year": int, "first_period": str,
                            "last_period": str}, ...],
         "suspense_idr": int,   # payments received and not applied (open discrepancies)
         "credits_idr": int}    # credits at BPJS carried over (deregistered billed months)
    """
    programme = config.id
    first_period = await connection.fetchval(
        "SELECT min(period) FROM finance.monthly_bill WHERE programme = $1", programme)
    first_bill: dict[str, Any] | None = None
    if first_period is not None:
        rows = await connection.fetch(
            """SELECT opd_code, due_date, workers, amount_idr, jkk_idr, jkm_idr, billed_idr,
                      paid_idr
                 FROM finance.monthly_bill WHERE programme = $1 AND period = $2
                ORDER BY amount_idr DESC, opd_code""", programme, first_period)
        first_bill = {
            "period": first_period,
            "due_date": min(r["due_date"] for r in rows),
            "workers": sum(r["workers"] for r in rows),
            "amount_idr": sum(r["amount_idr"] for r in rows),
            "jkk_idr": sum(r["jkk_idr"] for r in rows),
            "jkm_idr": sum(r["jkm_idr"] for r in rows),
            "billed_idr": sum(r["billed_idr"] for r in rows),
            "paid_idr": sum(r["paid_idr"] for r in rows),
            "by_opd": [{"opd_code": r["opd_code"], "workers": r["workers"],
                        "amount_idr": r["amount_idr"]} for r in rows],
        }
    budget = await connection.fetch(
        """SELECT funding_source, fiscal_year, allocated_idr, booked_idr, paid_idr, held_idr,
                  held_contributions, remaining_idr
             FROM finance.budget_utilisation WHERE programme = $1
            ORDER BY funding_source""", programme)
    statuses = await connection.fetch(
        """SELECT status, count(*) AS n FROM finance.contributions
            WHERE programme = $1 GROUP BY status""", programme)
    counts = {s: 0 for s in ("booked", "billed", "paid", "held", "cancelled")}
    counts.update({r["status"]: r["n"] for r in statuses})
    prepaid = await connection.fetch(
        """SELECT b.sequence, b.period, b.due_date, b.workers, b.lines, b.amount_idr, b.status,
                  b.paid_at, b.payment_reference, b.fiscal_year, b.first_period, b.last_period,
                  m.months_min, m.months_max
             FROM finance.bills b
             LEFT JOIN LATERAL (
                  SELECT min(n) AS months_min, max(n) AS months_max
                    FROM (SELECT count(*) AS n FROM ledger.bill_lines l
                            JOIN ledger.contributions c USING (contribution_id)
                           WHERE l.bill_id = b.bill_id GROUP BY c.nik) per_worker) m ON true
            WHERE b.programme = $1 AND b.billing = 'prepaid'
            ORDER BY b.sequence""", programme)
    money = await connection.fetchrow(
        """SELECT (SELECT coalesce(sum(unapplied_idr), 0) FROM finance.discrepancies
                    WHERE programme = $1)::bigint AS suspense,
                  (SELECT coalesce(sum(amount_idr), 0) FROM finance.credits
                    WHERE programme = $1 AND status = 'carried_over')::bigint AS credits""",
        programme)
    return {
        "programme": programme,
        "first_bill": first_bill,
        "budget": [dict(r) for r in budget],
        "contributions": counts,
        "prepaid_bills": [_prepaid_bill(r, config) for r in prepaid],
        "suspense_idr": money["suspense"],
        "credits_idr": money["credits"],
    }


def _prepaid_bill(row: asyncpg.Record, programme: Programme) -> dict[str, Any]:
    bill = {k: row[k] for k in ("sequence", "period", "due_date", "workers", "lines",
                                "months_min", "months_max", "amount_idr", "status",
                                "payment_reference", "fiscal_year", "first_period",
                                "last_period")}
    bill["paid_on"] = None if row["paid_at"] is None else programme.local(row["paid_at"]).date()
    return bill


def format_finance_summary(summary: dict[str, Any]) -> list[str]:
    """Lines for a terminal, e.g. the end of ``iuran demo``."""
    lines = ["  finance views"]
    bill = summary["first_bill"]
    if bill is None:
        lines.append("    first monthly bill        (nothing booked)")
    else:
        # A prepaid programme's months are due on its prepaid bill, not by the 15th.
        prepaid = bool(summary.get("prepaid_bills"))
        label = "first covered month" if prepaid else "first monthly bill"
        due = "" if prepaid else f", due {bill['due_date']}"
        lines.append(f"    {label:<26}{bill['period']}{due}: "
                     f"{bill['workers']:,} workers, {rupiah(bill['amount_idr'])} "
                     f"(JKK {rupiah(bill['jkk_idr'])} + JKM {rupiah(bill['jkm_idr'])})")
        for opd in bill["by_opd"][:5]:
            lines.append(f"      {opd['opd_code']:<22}{opd['workers']:>8,} workers "
                         f"{rupiah(opd['amount_idr']):>16}")
        if len(bill["by_opd"]) > 5:
            lines.append(f"      ... {len(bill['by_opd']) - 5} more OPDs")
    sources = ", ".join(b["funding_source"] for b in summary["budget"]) or "?"
    for p in summary.get("prepaid_bills", []):
        months = (f"{p['months_min']}" if p["months_min"] == p["months_max"]
                  else f"{p['months_min']}-{p['months_max']}")
        paid = (f"paid {p['paid_on']} from {sources} FY{p['fiscal_year']} "
                f"(ref {p['payment_reference']})" if p["paid_on"] is not None
                else f"{p['status']}, due {p['due_date']}")
        lines.append(f"    prepaid bill #{p['sequence']} {p['period']}     {p['workers']:,} "
                     f"workers × {months} months ({p['first_period']}..{p['last_period']}), "
                     f"{rupiah(p['amount_idr'])}, {paid}")
    for b in summary["budget"]:
        lines.append(f"    budget {b['funding_source']} {b['fiscal_year']}: allocated "
                     f"{rupiah(b['allocated_idr'])}, booked {rupiah(b['booked_idr'])}, paid "
                     f"{rupiah(b['paid_idr'])}, held {rupiah(b['held_idr'])} "
                     f"({b['held_contributions']:,}), remaining {rupiah(b['remaining_idr'])}")
        lines.append(f"    left of the {rupiah(b['allocated_idr'])}   {rupiah(b['remaining_idr'])}")
    if summary.get("suspense_idr") or summary.get("credits_idr"):
        lines.append(f"    in suspense (unapplied)   {rupiah(summary['suspense_idr'])}; credits at "
                     f"BPJS {rupiah(summary['credits_idr'])}")
    counts = summary["contributions"]
    lines.append("    contributions by status   " + ", ".join(
        f"{status} {n:,}" for status, n in counts.items()))
    return lines


# Workers of each programme by BPJS's latest verdict: those with a month the programme pays
# (held, booked, billed or paid), and those BPJS rejected (their months cancelled).
_BPJS_WORKERS = """
WITH live AS (
    SELECT programme, nik FROM ledger.live_contributions
    UNION
    SELECT h.programme, h.nik FROM ledger.held_contributions h
     WHERE NOT EXISTS (SELECT 1 FROM ledger.held_resolutions r
                        WHERE r.contribution_id = h.contribution_id))
SELECT p.programme,
       count(*) FILTER (WHERE m.status = 'verified' AND l.nik IS NOT NULL) AS verified,
       count(*) FILTER (WHERE m.status = 'rejected') AS rejected,
       count(*) FILTER (WHERE m.status IS NULL AND l.nik IS NOT NULL) AS awaiting
  FROM (SELECT programme, nik FROM live
        UNION SELECT programme, nik FROM finance.bpjs_members) p
  LEFT JOIN live l ON l.programme = p.programme AND l.nik = p.nik
  LEFT JOIN finance.bpjs_members m ON m.programme = p.programme AND m.nik = p.nik
 GROUP BY p.programme"""


async def refresh_gauges(connection: asyncpg.Connection, *, cover: bool = True) -> None:
    """Set the budget, unpaid-bill, discrepancy, credit and cover-ending gauges from the
    finance views (``cover``: the cover-ending gauge too, a scan of every worker's months)."""
    for row in await connection.fetch(
            """SELECT programme, funding_source, fiscal_year, allocated_idr, remaining_idr
                 FROM finance.budget_utilisation WHERE fiscal_year IS NOT NULL"""):
        labels = (row["programme"], row["funding_source"], str(row["fiscal_year"]))
        metrics.BUDGET_ALLOCATED_IDR.labels(*labels).set(row["allocated_idr"])
        metrics.BUDGET_REMAINING_IDR.labels(*labels).set(row["remaining_idr"])
    for row in await connection.fetch(
            """SELECT programme,
                      (SELECT count(*) FROM finance.bills b
                        WHERE b.programme = p.programme AND b.status = 'past_due') AS past_due,
                      (SELECT count(*) FROM finance.discrepancies d
                        WHERE d.programme = p.programme AND d.status = 'open') AS open,
                      (SELECT coalesce(sum(k.amount_idr), 0) FROM finance.credits k
                        WHERE k.programme = p.programme AND k.status = 'carried_over')
                          AS credits_idr
                 FROM (SELECT programme FROM ledger.budget_allocations
                       UNION SELECT programme FROM ledger.bills
                       UNION SELECT programme FROM ledger.discrepancies) p"""):
        metrics.BILLS_UNPAID_PAST_DUE.labels(row["programme"]).set(row["past_due"])
        metrics.DISCREPANCIES_OPEN.labels(row["programme"]).set(row["open"])
        metrics.CREDITS_CARRIED_OVER_IDR.labels(row["programme"]).set(row["credits_idr"])
    if cover:
        await refresh_cover_gauge(connection)
    for row in await connection.fetch(_BPJS_WORKERS):
        for status in ("verified", "rejected", "awaiting"):
            metrics.BPJS_WORKERS.labels(row["programme"], status).set(row[status])


# Per programme with BPJS bills: the months the ledger books for verified workers, in months
# BPJS bills, that no bill of the programme has (finance.bpjs_missing_months). A gauge, not a
# counter: a later part of a bill may still bring them. A scan of every month BPJS bills
# (about 2 s for Malang's 309,696), so the ledger runs it seldom (service.py).
_MISSING_AT_BPJS = """
SELECT b.programme, count(m.nik) AS months
  FROM (SELECT DISTINCT programme FROM ledger.bpjs_bills) b
  LEFT JOIN finance.bpjs_missing_months m ON m.programme = b.programme
 GROUP BY b.programme"""


async def refresh_missing_at_bpjs_gauge(connection: asyncpg.Connection) -> None:
    """Set iuran_bpjs_months_missing_at_bpjs of every programme with BPJS bills."""
    for row in await connection.fetch(_MISSING_AT_BPJS):
        metrics.BPJS_MONTHS_MISSING_AT_BPJS.labels(row["programme"]).set(row["months"])
