-- Who waits for budget, worker by worker: the months held (budget_exceeded, no_allocation)
-- and not resolved, with the worker's place in the allocation's queue. Held months are booked
-- in this order when room frees or the budget is raised: workers a renewal ranked first (by
-- renewal_rank, the next year's priority order), then the others in the order they were held.
CREATE VIEW finance.waiting_list AS
WITH waiting AS (
    SELECT h.programme, h.funding_source, h.nik,
           (array_agg(h.opd_code ORDER BY h.period DESC))[1] AS opd_code,
           (array_agg(h.category ORDER BY h.period DESC))[1] AS category,
           (array_agg(h.kecamatan ORDER BY h.period DESC))[1] AS kecamatan,
           (array_agg(h.reason ORDER BY h.hold_seq))[1] AS reason,
           min(h.period) AS first_period, max(h.period) AS last_period,
           count(*) AS months, sum(h.amount_idr)::bigint AS amount_idr,
           min(h.hold_seq) AS first_hold, min(h.held_at) AS held_at
      FROM ledger.held_contributions h
     WHERE h.reason IN ('budget_exceeded', 'no_allocation')
       AND NOT EXISTS (SELECT 1 FROM ledger.held_resolutions r
                        WHERE r.contribution_id = h.contribution_id)
     GROUP BY h.programme, h.funding_source, h.nik
)
SELECT row_number() OVER (PARTITION BY w.programme, w.funding_source
                          ORDER BY r.rank NULLS LAST, w.first_hold) AS place,
       w.programme, w.funding_source, w.nik, w.opd_code, w.category, w.kecamatan, w.reason,
       w.first_period, w.last_period, w.months, w.amount_idr, w.held_at,
       r.rank AS renewal_rank, r.renewal_of
  FROM waiting w
  LEFT JOIN ledger.renewal_ranks r ON r.programme = w.programme AND r.nik = w.nik;
GRANT SELECT ON finance.waiting_list TO iuran_ledger_writer, iuran_finance;
