-- Per allocation: what is allocated, booked (months not cancelled), paid, held, the credits
-- at BPJS (months cancelled after they were billed: the money is at BPJS, so it stays
-- committed) and the room remaining (allocated minus booked and credits).
CREATE VIEW finance.budget_utilisation AS
WITH paid AS (
    SELECT c.programme, c.funding_source, sum(t.amount_idr)::bigint AS paid_idr
      FROM ledger.transfers t JOIN ledger.contributions c ON c.contribution_id = t.contribution_id
     WHERE t.kind = 'settlement'
     GROUP BY c.programme, c.funding_source
), held AS (
    SELECT h.programme, h.funding_source, count(*) AS held, sum(h.amount_idr)::bigint AS held_idr
      FROM ledger.held_contributions h
     WHERE NOT EXISTS (SELECT 1 FROM ledger.held_resolutions r
                        WHERE r.contribution_id = h.contribution_id)
     GROUP BY h.programme, h.funding_source
), credit AS (
    SELECT c.programme, c.funding_source, sum(k.amount_idr)::bigint AS credit_idr
      FROM ledger.credits k JOIN ledger.contributions c USING (contribution_id)
     GROUP BY c.programme, c.funding_source
)
SELECT coalesce(a.programme, held.programme) AS programme,
       coalesce(a.funding_source, held.funding_source) AS funding_source,
       a.fiscal_year,
       coalesce(a.allocated_idr, 0) AS allocated_idr,
       (coalesce(a.booked_idr, 0) - coalesce(credit.credit_idr, 0))::bigint AS booked_idr,
       coalesce(paid.paid_idr, 0) AS paid_idr,
       coalesce(held.held_idr, 0) AS held_idr,
       coalesce(held.held, 0) AS held_contributions,
       coalesce(a.allocated_idr - a.booked_idr, 0) AS remaining_idr,
       a.changed_at,
       coalesce(credit.credit_idr, 0) AS credit_idr
  FROM ledger.budget_allocations a
  FULL JOIN held ON held.programme = a.programme AND held.funding_source = a.funding_source
  LEFT JOIN paid ON paid.programme = coalesce(a.programme, held.programme)
                AND paid.funding_source = coalesce(a.funding_source, held.funding_source)
  LEFT JOIN credit ON credit.programme = coalesce(a.programme, held.programme)
                  AND credit.funding_source = coalesce(a.funding_source, held.funding_source);
GRANT SELECT ON finance.budget_utilisation TO iuran_ledger_writer, iuran_finance;
