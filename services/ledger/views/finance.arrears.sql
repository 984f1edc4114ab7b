-- Workers with months past their effective due date and not paid. Lapse risk (three or more
-- unpaid months) concerns monthly billing only: a prepaid worker's months are paid up front
-- with one bill, so a prepaid worker is never at lapse risk (a late prepaid bill shows in
-- finance.bills as past_due and here as unpaid months). Late is judged by the programme's
-- day (finance.today, taken once per programme with a recorded time zone).
CREATE VIEW finance.arrears AS
WITH late AS (
    SELECT fc.*, coalesce(b.billing, pb.mode, 'monthly') AS billing
      FROM finance.contributions fc
      LEFT JOIN ledger.bills b ON b.bill_id = fc.bill_id
      LEFT JOIN ledger.programme_billing pb ON pb.programme = fc.programme
      LEFT JOIN (SELECT DISTINCT programme, finance.today(programme) AS today
                   FROM ledger.programme_time_zones) d ON d.programme = fc.programme
     WHERE fc.status IN ('booked', 'billed', 'held')
       AND finance.effective_due_date(coalesce(b.billing, pb.mode), b.due_date, fc.due_date)
           < coalesce(d.today, finance.today(fc.programme))
)
SELECT nik, programme,
       (array_agg(opd_code ORDER BY period DESC))[1] AS opd_code,
       (array_agg(category ORDER BY period DESC))[1] AS category,
       (array_agg(kecamatan ORDER BY period DESC))[1] AS kecamatan,
       count(*) AS unpaid_months,
       sum(amount_idr)::bigint AS unpaid_idr,
       min(period) AS oldest_unpaid_period,
       max(period) AS latest_unpaid_period,
       min(due_date) AS oldest_due_date,
       count(*) FILTER (WHERE status = 'held') AS held_months,
       count(*) FILTER (WHERE billing = 'monthly') >= 3 AS lapse_risk,
       bool_or(billing = 'prepaid') AS prepaid
  FROM late
 GROUP BY nik, programme;
GRANT SELECT ON finance.arrears TO iuran_ledger_writer, iuran_finance;
