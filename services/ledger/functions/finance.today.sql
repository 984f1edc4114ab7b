-- Local date of Kota Malang (WIB), for what is past due.
CREATE OR REPLACE FUNCTION finance.today() RETURNS date LANGUAGE sql STABLE AS $$
    SELECT (now() AT TIME ZONE 'Asia/Jakarta')::date
$$;
GRANT EXECUTE ON FUNCTION finance.today() TO iuran_ledger_writer, iuran_finance, iuran_auditor;
