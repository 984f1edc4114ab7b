-- Voided receipts and refunds received, for finance.
CREATE VIEW finance.payment_voids AS
SELECT v.payment_id, p.programme, p.period, p.reference, p.paid_at, v.amount_idr, v.reason,
       v.voided_by, v.voided_at
  FROM ledger.payment_voids v JOIN ledger.payments p USING (payment_id);
GRANT SELECT ON finance.payment_voids TO iuran_ledger_writer, iuran_finance;
