-- Every rupiah of the journal traced to a worker and month: the months each transfer carries
-- (an accrual its batch's booked months, a reversal its cancelled ones, a settlement or a
-- refund the one month it names).
CREATE VIEW finance.journal_lines AS
SELECT t.transfer_id, t.kind, t.debit_account, t.credit_account, t.created_at,
       c.contribution_id, c.nik, c.programme, c.period, c.generation, c.amount_idr
  FROM ledger.contributions c JOIN ledger.transfers t ON t.transfer_id = c.posting_id
UNION ALL
SELECT t.transfer_id, t.kind, t.debit_account, t.credit_account, t.created_at,
       c.contribution_id, c.nik, c.programme, c.period, c.generation, c.amount_idr
  FROM ledger.cancellations x
  JOIN ledger.contributions c USING (contribution_id)
  JOIN ledger.transfers t ON t.transfer_id = x.posting_id
UNION ALL
SELECT t.transfer_id, t.kind, t.debit_account, t.credit_account, t.created_at,
       c.contribution_id, c.nik, c.programme, c.period, c.generation, t.amount_idr
  FROM ledger.transfers t JOIN ledger.contributions c USING (contribution_id);
GRANT SELECT ON finance.journal_lines TO iuran_ledger_writer, iuran_finance;
