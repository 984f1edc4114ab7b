-- Account balances of the double-entry journal (debits minus credits); they sum to zero.
CREATE VIEW finance.account_balances AS
SELECT account, sum(debit_idr)::bigint AS debit_idr, sum(credit_idr)::bigint AS credit_idr,
       sum(debit_idr - credit_idr)::bigint AS balance_idr
  FROM (SELECT debit_account AS account, amount_idr AS debit_idr, 0::bigint AS credit_idr
          FROM ledger.transfers
        UNION ALL
        SELECT credit_account, 0::bigint, amount_idr FROM ledger.transfers) moves
 GROUP BY account;
GRANT SELECT ON finance.account_balances TO iuran_ledger_writer, iuran_finance;
