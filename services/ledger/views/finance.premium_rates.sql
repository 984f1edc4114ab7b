-- The premium rates in force, each from its month on.
CREATE VIEW finance.premium_rates AS
SELECT programme, effective_from, monthly_idr, jkk_idr, jkm_idr, recorded_at
  FROM ledger.current_premium_rates;
GRANT SELECT ON finance.premium_rates TO iuran_ledger_writer, iuran_finance;
