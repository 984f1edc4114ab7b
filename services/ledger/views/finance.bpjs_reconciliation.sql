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
SELECT bpjs_bill_id, programme, period, nik, kpj, line_number, outcome, expected_idr,
       billed_idr, payable_idr
  FROM finance.bpjs_line_outcomes
UNION ALL
SELECT bpjs_bill_id, programme, period, nik, kpj, NULL::integer, 'missing_at_bpjs',
       expected_idr, NULL::bigint, 0
  FROM finance.bpjs_missing_months;
GRANT SELECT ON finance.bpjs_reconciliation TO iuran_ledger_writer, iuran_finance;
