-- What must always be empty: a booking or cancellation transfer whose months do not add up
-- to it, or an allocation whose committed amount differs from its months booked and not
-- cancelled plus its credits at BPJS.
CREATE VIEW finance.journal_reconciliation AS
SELECT 'transfer'::text AS subject, t.transfer_id::text AS id, t.amount_idr AS expected_idr,
       coalesce(l.lines_idr, 0)::bigint AS found_idr
  FROM ledger.transfers t
  LEFT JOIN (SELECT transfer_id, sum(amount_idr) AS lines_idr FROM finance.journal_lines
              GROUP BY transfer_id) l USING (transfer_id)
 WHERE t.kind IN ('accrual', 'reversal') AND t.amount_idr <> coalesce(l.lines_idr, 0)
UNION ALL
SELECT 'allocation', a.programme || ':' || a.funding_source, a.booked_idr,
       (coalesce(live.idr, 0) + coalesce(credit.idr, 0))::bigint
  FROM ledger.budget_allocations a
  LEFT JOIN (SELECT programme, funding_source, sum(amount_idr) AS idr
               FROM ledger.live_contributions GROUP BY 1, 2) live
         USING (programme, funding_source)
  LEFT JOIN (SELECT c.programme, c.funding_source, sum(k.amount_idr) AS idr
               FROM ledger.credits k JOIN ledger.contributions c USING (contribution_id)
              GROUP BY 1, 2) credit USING (programme, funding_source)
 WHERE a.booked_idr <> coalesce(live.idr, 0) + coalesce(credit.idr, 0);
GRANT SELECT ON finance.journal_reconciliation TO iuran_ledger_writer, iuran_finance;
