-- What is payable to BPJS for each month, per OPD: the active booked contributions, how
-- much of it is on issued bills and how much is paid.
CREATE VIEW finance.monthly_bill AS
SELECT programme, period, opd_code, min(due_date) AS due_date,
       count(*) AS workers,
       sum(amount_idr)::bigint AS amount_idr,
       sum(jkk_idr)::bigint AS jkk_idr,
       sum(jkm_idr)::bigint AS jkm_idr,
       coalesce(sum(amount_idr) FILTER (WHERE status IN ('billed', 'paid')), 0)::bigint AS billed_idr,
       coalesce(sum(amount_idr) FILTER (WHERE status = 'paid'), 0)::bigint AS paid_idr,
       coalesce(sum(amount_idr) FILTER (WHERE status = 'booked'), 0)::bigint AS unbilled_idr
  FROM finance.contributions
 WHERE status IN ('booked', 'billed', 'paid')
 GROUP BY programme, period, opd_code;
GRANT SELECT ON finance.monthly_bill TO iuran_ledger_writer, iuran_finance;
