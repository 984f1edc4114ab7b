-- The months the ledger books for a worker BPJS verified, in a month the programme's BPJS
-- bills cover, that no BPJS bill of the programme has: missing_at_bpjs in
-- finance.bpjs_reconciliation (shown once, on the latest bill that covers the month), and
-- the ledger's gauge iuran_bpjs_months_missing_at_bpjs.
CREATE VIEW finance.bpjs_missing_months AS
WITH covered AS (
    -- each month a BPJS bill of the programme bills, with the latest such bill
    SELECT DISTINCT ON (b.programme, l.period) b.programme, l.period, b.bpjs_bill_id
      FROM ledger.bpjs_bill_lines l JOIN ledger.bpjs_bills b USING (bpjs_bill_id)
     ORDER BY b.programme, l.period, b.issued_at DESC, b.bpjs_bill_id DESC
)
SELECT v.bpjs_bill_id, c.programme, c.period, c.nik, m.kpj, c.amount_idr AS expected_idr
  FROM covered v
  JOIN ledger.live_contributions c ON c.programme = v.programme AND c.period = v.period
  JOIN finance.bpjs_members m
    ON m.programme = c.programme AND m.nik = c.nik AND m.status = 'verified'
   AND m.effective_period <= c.period
 WHERE NOT EXISTS (SELECT 1 FROM ledger.bpjs_bill_lines l
                     JOIN ledger.bpjs_bills o USING (bpjs_bill_id)
                    WHERE o.programme = c.programme AND l.nik = c.nik
                      AND l.period = c.period);
GRANT SELECT ON finance.bpjs_missing_months TO iuran_ledger_writer, iuran_finance;
