-- The journal triggers plan their queries at every call (EXECUTE): a plan cached by a
-- session when its first batch was small (nested loops over a transition table of a few
-- rows) turned a later batch of 24,000 rows into a minute-long statement. Same logic as 002
-- and 003; the transition tables are visible to EXECUTE in trigger functions.

CREATE OR REPLACE FUNCTION ledger.track_budget() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    unallocated text;
BEGIN
    EXECUTE $sql$
        WITH moves AS (
            SELECT c.programme, c.funding_source,
                   sum(CASE t.kind WHEN 'accrual' THEN t.amount_idr ELSE -t.amount_idr END)
                       AS delta
              FROM new_transfers t
              JOIN ledger.contributions c ON c.contribution_id = t.contribution_id
             WHERE t.kind IN ('accrual', 'reversal')
             GROUP BY c.programme, c.funding_source
        ), updated AS (
            UPDATE ledger.budget_allocations a
               SET booked_idr = a.booked_idr + m.delta
              FROM moves m
             WHERE a.programme = m.programme AND a.funding_source = m.funding_source
            RETURNING a.programme, a.funding_source
        )
        SELECT m.programme
          FROM moves m
         WHERE NOT EXISTS (SELECT 1 FROM updated u
                            WHERE u.programme = m.programme
                              AND u.funding_source = m.funding_source)
         LIMIT 1
    $sql$ INTO unallocated;
    IF unallocated IS NOT NULL THEN
        RAISE EXCEPTION 'no budget allocation for programme %', unallocated
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NULL;
END;
$$;

CREATE OR REPLACE FUNCTION ledger.check_bill_lines() RETURNS trigger
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    bad text;
BEGIN
    EXECUTE $sql$
        SELECT l.bill_id::text
          FROM new_lines l JOIN ledger.bills b USING (bill_id)
         WHERE b.issued_xact <> pg_current_xact_id()
         LIMIT 1
    $sql$ INTO bad;
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION 'bill % is issued and frozen: a later contribution goes to a supplementary bill', bad
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    EXECUTE $sql$
        SELECT l.contribution_id::text
          FROM new_lines l
          JOIN ledger.bills b USING (bill_id)
          JOIN ledger.contributions c ON c.contribution_id = l.contribution_id
         WHERE c.programme <> b.programme OR c.period <> b.period OR c.amount_idr <> l.amount_idr
            OR EXISTS (SELECT 1 FROM ledger.cancellations x
                        WHERE x.contribution_id = c.contribution_id)
         LIMIT 1
    $sql$ INTO bad;
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION 'bill line % does not match an active contribution of the bill''s programme and period', bad
            USING ERRCODE = 'check_violation';
    END IF;
    EXECUTE $sql$
        SELECT b.bill_id::text
          FROM ledger.bills b
         WHERE b.bill_id IN (SELECT bill_id FROM new_lines)
           AND (b.lines, b.amount_idr) <> (SELECT count(*)::integer, sum(l.amount_idr)::bigint
                                             FROM ledger.bill_lines l
                                            WHERE l.bill_id = b.bill_id)
         LIMIT 1
    $sql$ INTO bad;
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION 'the lines of bill % do not add up to its header', bad
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NULL;
END;
$$;
