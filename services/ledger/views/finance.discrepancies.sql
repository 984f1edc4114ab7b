-- Discrepancies with what became of their money: in suspense (unapplied_idr) until a
-- person applies, refunds or carries it over.
CREATE VIEW finance.discrepancies AS
SELECT d.discrepancy_id, d.payment_id, d.programme, d.period, d.kind, d.expected_idr,
       d.paid_idr, d.paid_idr - d.expected_idr AS difference_idr, d.reference, d.detail,
       p.paid_at, d.recorded_at,
       CASE WHEN r.discrepancy_id IS NULL THEN 'open' ELSE 'resolved' END AS status,
       r.resolution, r.resolved_by, r.resolved_at,
       CASE WHEN r.discrepancy_id IS NULL THEN d.paid_idr ELSE 0 END::bigint AS unapplied_idr,
       r.action, r.bill_id AS applied_to_bill_id, coalesce(r.applied_idr, 0) AS applied_idr,
       coalesce(r.refunded_idr, 0) AS refunded_idr,
       coalesce(r.carried_over_idr, 0) AS carried_over_idr
  FROM ledger.discrepancies d
  JOIN ledger.payments p ON p.payment_id = d.payment_id
  LEFT JOIN ledger.discrepancy_resolutions r ON r.discrepancy_id = d.discrepancy_id;
GRANT SELECT ON finance.discrepancies TO iuran_ledger_writer, iuran_finance;
