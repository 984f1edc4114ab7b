-- The months booked and not cancelled, in one place. Queries that mean "what the ledger
-- books now" read this view instead of repeating the anti-join on ledger.cancellations;
-- the planner inlines it, so their plans are unchanged.
CREATE VIEW ledger.live_contributions AS
SELECT c.*
  FROM ledger.contributions c
 WHERE NOT EXISTS (SELECT 1 FROM ledger.cancellations x
                    WHERE x.contribution_id = c.contribution_id);

COMMENT ON VIEW ledger.live_contributions IS
    'ledger.contributions without the cancelled months';
GRANT SELECT ON ledger.live_contributions TO iuran_ledger_writer;
