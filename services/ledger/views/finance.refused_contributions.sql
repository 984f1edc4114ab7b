-- Contributions the ledger could neither book, hold nor record as a duplicate, with why,
-- and whether the month was booked since.
CREATE VIEW finance.refused_contributions AS
SELECT f.refused_id, f.contribution_id, f.nik, f.programme, f.period, f.generation,
       f.opd_code, f.funding_source, f.due_date, f.amount_idr, f.reason, f.seen_at,
       f.schedule_id, f.registration_event_id,
       EXISTS (SELECT 1 FROM ledger.contributions c
                WHERE c.contribution_id = f.contribution_id) AS booked_since
  FROM ledger.refused_contributions f;
GRANT SELECT ON finance.refused_contributions TO iuran_ledger_writer, iuran_finance;
