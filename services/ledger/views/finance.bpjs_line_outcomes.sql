-- The lines of BPJS's bills, each with its outcome against the ledger (the first part of
-- finance.bpjs_reconciliation, which explains the outcomes and adds the months BPJS did not
-- bill).
CREATE VIEW finance.bpjs_line_outcomes AS
WITH lines AS (
    SELECT b.bpjs_bill_id, b.programme, l.period, l.nik, l.kpj, l.line_number,
           l.amount_idr AS billed_idr, c.amount_idr AS expected_idr, s.status AS bpjs_status
      FROM ledger.bpjs_bill_lines l
      JOIN ledger.bpjs_bills b USING (bpjs_bill_id)
      LEFT JOIN ledger.live_contributions c
             ON c.programme = b.programme AND c.nik = l.nik AND c.period = l.period
      LEFT JOIN LATERAL (
            SELECT v.status FROM ledger.bpjs_verifications v
             WHERE v.programme = b.programme AND v.nik = l.nik
             ORDER BY v.verified_at DESC, v.seq DESC LIMIT 1) s ON true
)
SELECT bpjs_bill_id, programme, period, nik, kpj, line_number,
       CASE WHEN expected_idr IS NULL THEN 'not_ours'
            WHEN bpjs_status IS DISTINCT FROM 'verified' THEN 'not_verified'
            WHEN billed_idr <> expected_idr THEN 'amount_differs'
            ELSE 'matched' END AS outcome,
       expected_idr, billed_idr,
       CASE WHEN expected_idr IS NULL OR bpjs_status IS DISTINCT FROM 'verified' THEN 0
            ELSE least(billed_idr, expected_idr) END AS payable_idr
  FROM lines;
GRANT SELECT ON finance.bpjs_line_outcomes TO iuran_ledger_writer, iuran_finance;
