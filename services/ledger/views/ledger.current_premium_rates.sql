-- The rates in force: the programme's latest recorded rate set.
CREATE VIEW ledger.current_premium_rates AS
SELECT r.programme, r.effective_from, r.monthly_idr, r.jkk_idr, r.jkm_idr, r.recorded_at
  FROM ledger.premium_rates r
 WHERE r.rate_set = (SELECT l.rate_set FROM ledger.premium_rates l
                      WHERE l.programme = r.programme ORDER BY l.rate_id DESC LIMIT 1);
GRANT SELECT ON ledger.current_premium_rates TO iuran_ledger_writer;
