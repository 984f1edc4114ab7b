-- Move what allocations committed by a booked batch's deltas: the only way a writer changes
-- booked_idr (it holds no UPDATE privilege on it). The ceiling is the table's CHECK.
CREATE OR REPLACE FUNCTION ledger.commit_budget(p_programmes text[], p_sources text[],
                                                p_deltas bigint[])
    RETURNS void LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    UPDATE ledger.budget_allocations a SET booked_idr = a.booked_idr + d.delta
      FROM unnest(p_programmes, p_sources, p_deltas) AS d (programme, funding_source, delta)
     WHERE a.programme = d.programme AND a.funding_source = d.funding_source
$$;
REVOKE ALL ON FUNCTION ledger.commit_budget(text[], text[], bigint[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ledger.commit_budget(text[], text[], bigint[]) TO iuran_ledger_writer;
