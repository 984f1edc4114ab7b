-- Cash paid out per programme against the journal: every payment received is a receipt on
-- the cash account (settlements that credit cash directly count too); the difference is
-- always zero.
CREATE VIEW finance.cash_reconciliation AS
WITH received AS (
    SELECT programme, count(*) AS payments, sum(amount_idr)::bigint AS received_idr
      FROM ledger.payments GROUP BY programme
), journal AS (
    SELECT p.programme, sum(t.amount_idr)::bigint AS cash_idr
      FROM ledger.transfers t JOIN ledger.payments p ON p.payment_id = t.payment_id
     WHERE t.kind = 'receipt'
     GROUP BY p.programme
), legacy AS (
    SELECT p.programme, sum(t.amount_idr)::bigint AS cash_idr
      FROM ledger.transfers t
      JOIN ledger.bill_lines l ON l.contribution_id = t.contribution_id
      JOIN ledger.bill_settlements s ON s.bill_id = l.bill_id
      JOIN ledger.payments p ON p.payment_id = s.payment_id
     WHERE t.kind = 'settlement' AND t.credit_account LIKE 'asset:cash:%'
     GROUP BY p.programme
), suspense AS (
    SELECT substr(account, length('asset:unapplied:') + 1) AS programme,
           sum(CASE WHEN side = 'debit' THEN amount_idr ELSE -amount_idr END)::bigint
               AS unapplied_idr
      FROM (SELECT debit_account AS account, 'debit' AS side, amount_idr FROM ledger.transfers
            UNION ALL
            SELECT credit_account, 'credit', amount_idr FROM ledger.transfers) m
     WHERE account LIKE 'asset:unapplied:%'
     GROUP BY 1
)
SELECT r.programme, r.payments, r.received_idr,
       (coalesce(j.cash_idr, 0) + coalesce(l.cash_idr, 0))::bigint AS journal_cash_idr,
       coalesce(s.unapplied_idr, 0) AS unapplied_idr,
       (r.received_idr - coalesce(j.cash_idr, 0) - coalesce(l.cash_idr, 0))::bigint
           AS difference_idr
  FROM received r
  LEFT JOIN journal j USING (programme)
  LEFT JOIN legacy l USING (programme)
  LEFT JOIN suspense s USING (programme);
GRANT SELECT ON finance.cash_reconciliation TO iuran_ledger_writer, iuran_finance;
