-- Every BPJS verdict received, in the order BPJS decided them: the history behind
-- finance.bpjs_members (a later verdict supersedes an earlier one; none is removed).
CREATE VIEW finance.bpjs_verdicts AS
SELECT verification_id, programme, nik, status, kpj, effective_period, reason_code, reason,
       verified_at, received_at, cancelled_months,
       row_number() OVER (PARTITION BY programme, nik ORDER BY verified_at DESC, seq DESC) = 1
           AS standing
  FROM ledger.bpjs_verifications;
GRANT SELECT ON finance.bpjs_verdicts TO iuran_ledger_writer, iuran_finance;
