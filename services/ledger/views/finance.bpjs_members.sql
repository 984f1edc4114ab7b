-- Each worker's standing at BPJS per programme: the latest verdict (by BPJS's verified_at,
-- then by arrival). verified: the KPJ and the first month BPJS covers; rejected: BPJS's
-- reason code and its words (verbatim) and how many unbilled months the rejection
-- cancelled. The earlier verdicts stay in ledger.bpjs_verifications (finance.bpjs_verdicts).
CREATE VIEW finance.bpjs_members AS
SELECT DISTINCT ON (programme, nik)
       nik, programme, kpj, status, reason_code, reason, effective_period, verified_at,
       verification_id, received_at, cancelled_months
  FROM ledger.bpjs_verifications
 ORDER BY programme, nik, verified_at DESC, seq DESC;
GRANT SELECT ON finance.bpjs_members TO iuran_ledger_writer, iuran_finance;
