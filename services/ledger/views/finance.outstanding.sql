-- Booked and not yet paid, per programme and month; past due by the effective due date (a
-- prepaid month not yet billed is not past due: it waits for its prepaid bill), judged by
-- the programme's day (finance.today): the earliest effective due date is before it.
CREATE VIEW finance.outstanding AS
SELECT fc.programme, fc.period, min(fc.due_date) AS due_date, count(*) AS contributions,
       sum(fc.amount_idr)::bigint AS outstanding_idr,
       coalesce(sum(fc.amount_idr) FILTER (WHERE fc.status = 'billed'), 0)::bigint AS billed_idr,
       coalesce(sum(fc.amount_idr) FILTER (WHERE fc.status = 'booked'), 0)::bigint AS unbilled_idr,
       coalesce(min(finance.effective_due_date(coalesce(b.billing, pb.mode), b.due_date,
                                               fc.due_date)) < finance.today(fc.programme),
                false) AS past_due
  FROM finance.contributions fc
  LEFT JOIN ledger.bills b ON b.bill_id = fc.bill_id
  LEFT JOIN ledger.programme_billing pb ON pb.programme = fc.programme
 WHERE fc.status IN ('booked', 'billed')
 GROUP BY fc.programme, fc.period;
GRANT SELECT ON finance.outstanding TO iuran_ledger_writer, iuran_finance;
