-- Credits at BPJS: deregistered months that were already billed or paid, and discrepancy
-- money carried over. Status carried_over (credit held at BPJS) or refunded. credit_id is
-- the contribution (deregistration) or the payment (carried over).
CREATE VIEW finance.credits AS
SELECT k.contribution_id AS credit_id, 'deregistration'::text AS source, k.contribution_id,
       NULL::uuid AS payment_id,
       c.nik, k.programme, c.period, k.bill_id, k.amount_idr,
       CASE WHEN f.contribution_id IS NULL THEN 'carried_over' ELSE 'refunded' END AS status,
       k.recorded_at, f.refunded_at, f.reason AS refund_reason
  FROM ledger.credits k
  JOIN ledger.contributions c USING (contribution_id)
  LEFT JOIN ledger.credit_refunds f USING (contribution_id)
UNION ALL
SELECT d.payment_id, 'payment', NULL, d.payment_id, NULL, d.programme, d.period, NULL, r.carried_over_idr,
       'carried_over', r.resolved_at, NULL, NULL
  FROM ledger.discrepancy_resolutions r JOIN ledger.discrepancies d USING (discrepancy_id)
 WHERE r.carried_over_idr > 0;
GRANT SELECT ON finance.credits TO iuran_ledger_writer, iuran_finance;
