-- The advisory lock key of a worker-month: one of 1024 buckets, so that a batch re-booking
-- thousands of months takes a bounded number of locks.
CREATE OR REPLACE FUNCTION ledger.worker_month_lock(nik text, period text) RETURNS bigint
    LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT hashtextextended('worker-month:' || (hashtext(nik || ':' || period) & 1023)::text, 0)
$$;
REVOKE ALL ON FUNCTION ledger.worker_month_lock(text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ledger.worker_month_lock(text, text) TO iuran_ledger_writer;
