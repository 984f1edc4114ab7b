-- May generation g of a worker-month be booked now? For g = 0: when nothing of the month is
-- booked. For g >= 1: when every booked row of the month is cancelled, none is of generation
-- g or later, and an earlier generation is closed (booked, or held and cancelled while held).
CREATE OR REPLACE FUNCTION ledger.generation_may_be_booked(p_nik text, p_period text, p_generation integer)
    RETURNS boolean LANGUAGE sql STABLE AS $$
    SELECT NOT EXISTS (
               SELECT 1 FROM ledger.contributions c
                WHERE c.nik = p_nik AND c.period = p_period
                  AND (c.generation >= p_generation
                       OR NOT EXISTS (SELECT 1 FROM ledger.cancellations x
                                       WHERE x.contribution_id = c.contribution_id)))
       AND (p_generation = 0
            OR EXISTS (SELECT 1 FROM ledger.contributions c
                        WHERE c.nik = p_nik AND c.period = p_period
                          AND c.generation < p_generation)
            OR EXISTS (SELECT 1 FROM ledger.held_contributions h
                         JOIN ledger.held_resolutions r ON r.contribution_id = h.contribution_id
                        WHERE h.nik = p_nik AND h.period = p_period
                          AND h.generation < p_generation AND r.outcome = 'cancelled'))
$$;
REVOKE ALL ON FUNCTION ledger.generation_may_be_booked(text, text, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ledger.generation_may_be_booked(text, text, integer)
    TO iuran_ledger_writer;
