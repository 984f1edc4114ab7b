-- Each BPJS bill received, with its reconciliation summed up: what BPJS bills, what finance
-- should pay (finance.bpjs_reconciliation.payable_idr) and how many lines are not matched.
-- A bill is reconciled when every line matched and no month is missing at BPJS.
CREATE VIEW finance.bpjs_bills AS
SELECT b.bpjs_bill_id, b.programme, b.period, b.issued_at, b.received_at, b.lines,
       b.amount_idr AS billed_idr,
       coalesce(sum(r.payable_idr), 0)::bigint AS payable_idr,
       count(*) FILTER (WHERE r.outcome = 'matched') AS matched_lines,
       count(*) FILTER (WHERE r.outcome <> 'matched') AS unreconciled_lines,
       count(*) FILTER (WHERE r.outcome <> 'matched') = 0 AS reconciled
  FROM ledger.bpjs_bills b
  LEFT JOIN finance.bpjs_reconciliation r USING (bpjs_bill_id)
 GROUP BY b.bpjs_bill_id;
GRANT SELECT ON finance.bpjs_bills TO iuran_ledger_writer, iuran_finance;
