-- BPJS's bills line by line against the ledger, before the city pays them:
--   matched          the ledger books the worker-month (BPJS verified the worker) at the
--                    amount BPJS bills;
--   amount_differs   booked, but BPJS bills another amount (e.g. the PP 50/2025 discount of
--                    Rp8,400 applied to an APBD-paid worker, or JHT added);
--   not_verified     booked, but BPJS's latest verdict on the worker is not verified;
--   not_ours         no iuran programme books that worker-month under the bill's programme
--                    (another payer's worker, a month never enrolled, or one cancelled);
--   missing_at_bpjs  a month the ledger books for a worker BPJS verified, in a month the
--                    programme's BPJS bills cover, that no BPJS bill of the programme has
--                    (shown once, on the latest such bill; no line_number).
-- payable_idr is what finance should pay for the line: the billed amount when matched, the
-- lower of the two when the amounts differ, nothing otherwise.
CREATE VIEW finance.bpjs_reconciliation AS
WITH standing AS (
    SELECT programme, nik, status FROM finance.bpjs_members
), lines AS (
    SELECT b.bpjs_bill_id, b.programme, l.period, l.nik, l.kpj, l.line_number,
           l.amount_idr AS billed_idr, c.amount_idr AS expected_idr, s.status AS bpjs_status
      FROM ledger.bpjs_bill_lines l
      JOIN ledger.bpjs_bills b USING (bpjs_bill_id)
      LEFT JOIN ledger.live_contributions c
             ON c.programme = b.programme AND c.nik = l.nik AND c.period = l.period
      LEFT JOIN standing s ON s.programme = b.programme AND s.nik = l.nik
), missing AS (
    SELECT DISTINCT ON (c.nik, c.period, c.programme)
           b.bpjs_bill_id, c.programme, c.period, c.nik, m.kpj, NULL::integer AS line_number,
           NULL::bigint AS billed_idr, c.amount_idr AS expected_idr
      FROM ledger.live_contributions c
      JOIN finance.bpjs_members m
        ON m.programme = c.programme AND m.nik = c.nik AND m.status = 'verified'
       AND m.effective_period <= c.period
      JOIN ledger.bpjs_bills b ON b.programme = c.programme
      JOIN LATERAL (SELECT 1 FROM ledger.bpjs_bill_lines p
                     WHERE p.bpjs_bill_id = b.bpjs_bill_id AND p.period = c.period
                     LIMIT 1) covers ON true
     WHERE NOT EXISTS (SELECT 1 FROM ledger.bpjs_bill_lines l
                         JOIN ledger.bpjs_bills o USING (bpjs_bill_id)
                        WHERE o.programme = c.programme AND l.nik = c.nik
                          AND l.period = c.period)
     ORDER BY c.nik, c.period, c.programme, b.issued_at DESC, b.bpjs_bill_id DESC
)
SELECT bpjs_bill_id, programme, period, nik, kpj, line_number,
       CASE WHEN expected_idr IS NULL THEN 'not_ours'
            WHEN bpjs_status IS DISTINCT FROM 'verified' THEN 'not_verified'
            WHEN billed_idr <> expected_idr THEN 'amount_differs'
            ELSE 'matched' END AS outcome,
       expected_idr, billed_idr,
       CASE WHEN expected_idr IS NULL OR bpjs_status IS DISTINCT FROM 'verified' THEN 0
            ELSE least(billed_idr, expected_idr) END AS payable_idr
  FROM lines
UNION ALL
SELECT bpjs_bill_id, programme, period, nik, kpj, line_number, 'missing_at_bpjs',
       expected_idr, billed_idr, 0
  FROM missing;
GRANT SELECT ON finance.bpjs_reconciliation TO iuran_ledger_writer, iuran_finance;
