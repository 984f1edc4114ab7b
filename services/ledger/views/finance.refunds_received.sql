-- Refunds BPJS paid back, as bank statements show them.
CREATE VIEW finance.refunds_received AS
SELECT refund_id, programme, amount_idr, bank_reference, received_on, recorded_by, recorded_at
  FROM ledger.refunds_received;
GRANT SELECT ON finance.refunds_received TO iuran_ledger_writer, iuran_finance;
