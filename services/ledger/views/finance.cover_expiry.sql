-- Whose cover ends when. One row per worker and programme with a booked month: the last
-- month the programme books (covered_through) and pays (paid_through); months_left counts the
-- months from the current month (of the programme's day, finance.today) to covered_through,
-- both included (0: the cover has ended). inactive_from is the third month without payment
-- after paid_through, when no other programme continues the worker (BPJS makes a membership
-- inactive after three unpaid months); renewed_to is the programme whose booked months follow
-- covered_through (renewed_from its first such month).
CREATE VIEW finance.cover_expiry AS
WITH worker AS (
    SELECT nik, programme,
           (array_agg(opd_code ORDER BY period DESC))[1] AS opd_code,
           (array_agg(category ORDER BY period DESC))[1] AS category,
           (array_agg(kecamatan ORDER BY period DESC))[1] AS kecamatan,
           min(period) AS first_period,
           max(period) AS covered_through,
           max(period) FILTER (WHERE status = 'paid') AS paid_through
      FROM finance.contributions
     WHERE status IN ('booked', 'billed', 'paid')
     GROUP BY nik, programme
), next AS (
    SELECT DISTINCT ON (w.nik, w.programme) w.nik, w.programme, o.programme AS renewed_to,
           o.first_period AS renewed_from
      FROM worker w
      JOIN worker o ON o.nik = w.nik AND o.programme <> w.programme
                   AND o.first_period > w.covered_through
     ORDER BY w.nik, w.programme, o.first_period, o.programme
)
SELECT w.nik, w.programme, w.opd_code, w.category, w.kecamatan, w.first_period,
       w.covered_through, w.paid_through,
       greatest(0, (left(w.covered_through, 4)::int * 12 + right(w.covered_through, 2)::int)
                   - (extract(year FROM t.today)::int * 12 + extract(month FROM t.today)::int)
                   + 1) AS months_left,
       CASE WHEN n.renewed_to IS NULL AND w.paid_through IS NOT NULL
            THEN to_char(to_date(w.paid_through, 'YYYY-MM') + interval '3 months', 'YYYY-MM')
       END AS inactive_from,
       n.renewed_to, n.renewed_from, t.today
  FROM worker w
  LEFT JOIN (SELECT DISTINCT programme, finance.today(programme) AS today
               FROM ledger.programme_time_zones) d ON d.programme = w.programme
  CROSS JOIN LATERAL (SELECT coalesce(d.today, finance.today(w.programme)) AS today) t
  LEFT JOIN next n ON n.nik = w.nik AND n.programme = w.programme;
GRANT SELECT ON finance.cover_expiry TO iuran_ledger_writer, iuran_finance;
