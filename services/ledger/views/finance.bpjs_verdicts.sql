-- Every BPJS verdict received, in the order BPJS decided them: the history behind
-- finance.bpjs_members (a later verdict supersedes an earlier one; none is removed), with
-- the months each rejection cancelled (ledger.bpjs_cancelled_months, also those cancelled
-- when they arrived after it).
CREATE VIEW finance.bpjs_verdicts AS
SELECT v.verification_id, v.programme, v.nik, v.status, v.kpj, v.effective_period,
       v.reason_code, v.reason, v.verified_at, v.received_at,
       (SELECT count(*)::integer FROM ledger.bpjs_cancelled_months m
         WHERE m.nik = v.nik AND m.verification_id = v.verification_id) AS cancelled_months,
       row_number() OVER (PARTITION BY v.programme, v.nik
                          ORDER BY v.verified_at DESC, v.seq DESC) = 1 AS standing
  FROM ledger.bpjs_verifications v;
GRANT SELECT ON finance.bpjs_verdicts TO iuran_ledger_writer, iuran_finance;
