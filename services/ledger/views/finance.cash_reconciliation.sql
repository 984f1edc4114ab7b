-- Cash received per programme against the journal: every payment received is a receipt on
-- the cash account, a voided one is reversed; the difference is always zero. Sums are
-- numeric, so no set of amounts makes the view fail.
CREATE VIEW finance.cash_reconciliation AS
WITH received AS (
    SELECT p.programme, count(*) AS payments, sum(p.amount_idr::numeric) AS received_idr,
           coalesce(sum(v.amount_idr::numeric), 0) AS voided_idr
      FROM ledger.payments p LEFT JOIN ledger.payment_voids v USING (payment_id)
     GROUP BY p.programme
), journal AS (
    SELECT p.programme,
           sum(CASE t.kind WHEN 'receipt' THEN t.amount_idr::numeric
                           ELSE -t.amount_idr::numeric END) AS cash_idr
      FROM ledger.transfers t JOIN ledger.payments p ON p.payment_id = t.payment_id
     WHERE t.kind IN ('receipt', 'void')
     GROUP BY p.programme
), suspense AS (
    SELECT substr(account, length('asset:unapplied:') + 1) AS programme,
           sum(CASE WHEN side = 'debit' THEN amount_idr ELSE -amount_idr END) AS unapplied_idr
      FROM (SELECT debit_account AS account, 'debit' AS side, amount_idr::numeric AS amount_idr
              FROM ledger.transfers
            UNION ALL
            SELECT credit_account, 'credit', amount_idr::numeric FROM ledger.transfers) m
     WHERE account LIKE 'asset:unapplied:%'
     GROUP BY 1
)
SELECT r.programme, r.payments, r.received_idr,
       coalesce(j.cash_idr, 0) AS journal_cash_idr,
       coalesce(s.unapplied_idr, 0) AS unapplied_idr,
       r.received_idr - r.voided_idr - coalesce(j.cash_idr, 0) AS difference_idr,
       r.voided_idr
  FROM received r
  LEFT JOIN journal j USING (programme)
  LEFT JOIN suspense s USING (programme);
GRANT SELECT ON finance.cash_reconciliation TO iuran_ledger_writer, iuran_finance;
