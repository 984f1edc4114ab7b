-- Each worker's standing at BPJS per programme: the latest verdict (by BPJS's verified_at,
-- then by arrival). verified: the KPJ and the first month BPJS covers; rejected: BPJS's
-- reason code and its words (verbatim) and how many months the rejection cancelled
-- (ledger.bpjs_cancelled_months: unbilled months when it arrived, and the months of the
-- registrations it judged that arrived after it). The earlier verdicts stay in
-- ledger.bpjs_verifications (finance.bpjs_verdicts).
CREATE VIEW finance.bpjs_members AS
SELECT DISTINCT ON (v.programme, v.nik)
       v.nik, v.programme, v.kpj, v.status, v.reason_code, v.reason, v.effective_period,
       v.verified_at, v.verification_id, v.received_at,
       (SELECT count(*)::integer FROM ledger.bpjs_cancelled_months m
         WHERE m.nik = v.nik AND m.verification_id = v.verification_id) AS cancelled_months
  FROM ledger.bpjs_verifications v
 ORDER BY v.programme, v.nik, v.verified_at DESC, v.seq DESC;
GRANT SELECT ON finance.bpjs_members TO iuran_ledger_writer, iuran_finance;
