-- May generation g of a worker-month be booked now? When no row of the month is active (every
-- booked row is cancelled) and none is of generation g or later. An earlier generation need
-- not have reached the ledger: its registration and cancellation may arrive after this one
-- (they are then not booked).
CREATE OR REPLACE FUNCTION ledger.generation_may_be_booked(p_nik text, p_period text, p_generation integer)
    RETURNS boolean LANGUAGE sql STABLE AS $$
    SELECT NOT EXISTS (
               SELECT 1 FROM ledger.contributions c
                WHERE c.nik = p_nik AND c.period = p_period
                  AND (c.generation >= p_generation
                       OR NOT EXISTS (SELECT 1 FROM ledger.cancellations x
                                       WHERE x.contribution_id = c.contribution_id)))
$$;
REVOKE ALL ON FUNCTION ledger.generation_may_be_booked(text, text, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ledger.generation_may_be_booked(text, text, integer)
    TO iuran_ledger_writer;
