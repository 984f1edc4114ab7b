-- Issued bills (the original and supplementary ones) and whether they are paid: workers are
-- distinct NIKs (a prepaid bill has several months per worker), with the lines, billing
-- mode, fiscal year and the months covered. A bill is past due from the day after its due
-- date in the programme's time zone (finance.today).
CREATE VIEW finance.bills AS
SELECT b.bill_id, b.programme, b.period, b.sequence, b.due_date,
       coalesce(w.workers, 0)::integer AS workers,
       b.amount_idr, b.issued_at, b.issued_by,
       CASE WHEN s.bill_id IS NOT NULL THEN 'paid'
            WHEN b.due_date < finance.today(b.programme) THEN 'past_due'
            ELSE 'open' END AS status,
       s.payment_id, p.reference AS payment_reference, p.paid_at,
       b.lines, b.billing, b.fiscal_year, w.first_period, w.last_period
  FROM ledger.bills b
  LEFT JOIN LATERAL (
        SELECT count(DISTINCT c.nik) AS workers, min(c.period) AS first_period,
               max(c.period) AS last_period
          FROM ledger.bill_lines l JOIN ledger.contributions c USING (contribution_id)
         WHERE l.bill_id = b.bill_id) w ON true
  LEFT JOIN ledger.bill_settlements s ON s.bill_id = b.bill_id
  LEFT JOIN ledger.payments p ON p.payment_id = s.payment_id;
GRANT SELECT ON finance.bills TO iuran_ledger_writer, iuran_finance;
