-- Least-privileged roles. Roles are cluster-wide: create them only when missing (another
-- database of the cluster may have created them), never with a password. To log in, grant
-- them to a login role, e.g. CREATE ROLE bi LOGIN PASSWORD '...' IN ROLE iuran_finance;
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'iuran_ledger_writer') THEN
        BEGIN
            CREATE ROLE iuran_ledger_writer NOLOGIN;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
        END;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'iuran_finance') THEN
        BEGIN
            CREATE ROLE iuran_finance NOLOGIN;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
        END;
    END IF;
END;
$$;

-- Nobody but the owner and these roles reads or writes the ledger.
REVOKE ALL ON SCHEMA ledger FROM PUBLIC;
REVOKE ALL ON ALL TABLES IN SCHEMA ledger FROM PUBLIC;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA ledger FROM PUBLIC;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA ledger FROM PUBLIC;
REVOKE ALL ON SCHEMA finance FROM PUBLIC;
REVOKE ALL ON ALL TABLES IN SCHEMA finance FROM PUBLIC;

-- The ledger writer: reads and inserts, raises allocations (guarded by triggers); no
-- UPDATE of anything else, no DELETE, no TRUNCATE, no DDL.
GRANT USAGE ON SCHEMA ledger TO iuran_ledger_writer;
GRANT SELECT, INSERT ON ALL TABLES IN SCHEMA ledger TO iuran_ledger_writer;
GRANT UPDATE (allocated_idr) ON ledger.budget_allocations TO iuran_ledger_writer;
GRANT USAGE ON ALL SEQUENCES IN SCHEMA ledger TO iuran_ledger_writer;
GRANT USAGE ON SCHEMA finance TO iuran_ledger_writer;
GRANT SELECT ON ALL TABLES IN SCHEMA finance TO iuran_ledger_writer;
GRANT EXECUTE ON FUNCTION finance.today() TO iuran_ledger_writer;

-- Finance and BI tools: SELECT on the finance views, nothing else.
GRANT USAGE ON SCHEMA finance TO iuran_finance;
GRANT SELECT ON ALL TABLES IN SCHEMA finance TO iuran_finance;
GRANT EXECUTE ON FUNCTION finance.today() TO iuran_finance;

-- Objects added by later migrations (run by the same owner) get the same grants.
ALTER DEFAULT PRIVILEGES IN SCHEMA ledger GRANT SELECT, INSERT ON TABLES TO iuran_ledger_writer;
ALTER DEFAULT PRIVILEGES IN SCHEMA ledger GRANT USAGE ON SEQUENCES TO iuran_ledger_writer;
ALTER DEFAULT PRIVILEGES IN SCHEMA finance GRANT SELECT ON TABLES TO iuran_ledger_writer;
ALTER DEFAULT PRIVILEGES IN SCHEMA finance GRANT SELECT ON TABLES TO iuran_finance;
