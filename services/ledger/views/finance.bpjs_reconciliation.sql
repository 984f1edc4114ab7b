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
WITH covered AS (
    -- each month a BPJS bill of the programme bills, with the latest such bill
    SELECT DISTINCT ON (b.programme, l.period) b.programme, l.period, b.bpjs_bill_id
      FROM ledger.bpjs_bill_lines l JOIN ledger.bpjs_bills b USING (bpjs_bill_id)
     ORDER BY b.programme, l.period, b.issued_at DESC, b.bpjs_bill_id DESC
), missing AS (
    SELECT v.bpjs_bill_id, c.programme, c.period, c.nik, m.kpj, NULL::integer AS line_number,
           NULL::bigint AS billed_idr, c.amount_idr AS expected_idr
      FROM covered v
      JOIN ledger.live_contributions c ON c.programme = v.programme AND c.period = v.period
      JOIN finance.bpjs_members m
        ON m.programme = c.programme AND m.nik = c.nik AND m.status = 'verified'
       AND m.effective_period <= c.period
     WHERE NOT EXISTS (SELECT 1 FROM ledger.bpjs_bill_lines l
                         JOIN ledger.bpjs_bills o USING (bpjs_bill_id)
                        WHERE o.programme = c.programme AND l.nik = c.nik
                          AND l.period = c.period)
)
SELECT bpjs_bill_id, programme, period, nik, kpj, line_number, outcome, expected_idr,
       billed_idr, payable_idr
  FROM finance.bpjs_line_outcomes
UNION ALL
SELECT bpjs_bill_id, programme, period, nik, kpj, line_number, 'missing_at_bpjs',
       expected_idr, billed_idr, 0
  FROM missing;
GRANT SELECT ON finance.bpjs_reconciliation TO iuran_ledger_writer, iuran_finance;
