-- A programme's calendar day at a moment (default: now, the start of the transaction): the
-- day in the time zone its programme file declares, the latest the ledger recorded in
-- ledger.programme_time_zones; WIB (Asia/Jakarta, a programme's default zone) when none is
-- recorded. What is past due, and the month cover is counted from, are judged by it. It runs
-- as its owner: the finance roles read the zones through it, not the ledger's tables.
CREATE OR REPLACE FUNCTION finance.today(programme text, moment timestamptz DEFAULT now())
    RETURNS date LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS $$
    SELECT (moment AT TIME ZONE coalesce(
               (SELECT z.timezone FROM ledger.programme_time_zones z
                 WHERE z.programme = today.programme ORDER BY z.zone_id DESC LIMIT 1),
               'Asia/Jakarta'))::date
$$;
REVOKE ALL ON FUNCTION finance.today(text, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION finance.today(text, timestamptz)
    TO iuran_ledger_writer, iuran_finance, iuran_auditor;
