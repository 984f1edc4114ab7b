-- Account balances of the double-entry journal (debits minus credits); they sum to zero.
-- Sums are numeric: no set of amounts, however large, makes the view fail.
CREATE VIEW finance.account_balances AS
SELECT account, sum(debit_idr) AS debit_idr, sum(credit_idr) AS credit_idr,
       sum(debit_idr - credit_idr) AS balance_idr
  FROM (SELECT debit_account AS account, amount_idr::numeric AS debit_idr,
               0::numeric AS credit_idr
          FROM ledger.transfers
        UNION ALL
        SELECT credit_account, 0::numeric, amount_idr::numeric FROM ledger.transfers) moves
 GROUP BY account;
GRANT SELECT ON finance.account_balances TO iuran_ledger_writer, iuran_finance;
