-- Personal data under UU 27/2022 (docs/privacy.md): the record of every processing of
-- personal data (art. 31), readable by the data protection officer's role, and what the
-- retention purge left of each worker it erased.
CREATE SCHEMA privacy;

-- The data protection officer (and auditors): SELECT only, on the access log and on the
-- finance views a data subject's record is read from. Cluster-wide, created when missing,
-- never with a password (grant it to a login role).
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'iuran_auditor') THEN
        BEGIN
            CREATE ROLE iuran_auditor NOLOGIN;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
        END;
    END IF;
END;
$$;

-- One row per processing of personal data: an API response, an export or a CLI command.
-- `niks` lists the NIKs read when they are few; a bulk read lists none and says how many
-- it read and with which filters (`nik_count`, `filters`).
CREATE TABLE privacy.personal_data_access (
    id         bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at         timestamptz NOT NULL DEFAULT now(),
    actor      text        NOT NULL CHECK (length(actor) BETWEEN 1 AND 200),  -- token name, OS user
    role       text        NOT NULL CHECK (length(role) BETWEEN 1 AND 100),
    channel    text        NOT NULL CHECK (channel IN ('api', 'cli', 'export')),
    what       text        NOT NULL CHECK (length(what) BETWEEN 1 AND 200),  -- endpoint, command
    filters    jsonb       NOT NULL DEFAULT '{}',
    niks       text[]      NOT NULL DEFAULT '{}',
    nik_count  integer     NOT NULL CHECK (nik_count >= 0),
    masked     boolean     NOT NULL DEFAULT false,  -- the reader saw NIKs masked
    purpose    text        NOT NULL CHECK (length(purpose) BETWEEN 1 AND 500),
    CONSTRAINT personal_data_access_listed CHECK (cardinality(niks) <= nik_count)
);
CREATE INDEX personal_data_access_niks ON privacy.personal_data_access USING gin (niks);
CREATE INDEX personal_data_access_at ON privacy.personal_data_access (at);

-- The record of processing is never changed or removed, whatever the code does.
CREATE FUNCTION privacy.refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'privacy.% is append-only: % is not allowed', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;
CREATE TRIGGER personal_data_access_append_only
    BEFORE UPDATE OR DELETE ON privacy.personal_data_access
    FOR EACH ROW EXECUTE FUNCTION privacy.refuse_change();
CREATE TRIGGER personal_data_access_no_truncate BEFORE TRUNCATE ON privacy.personal_data_access
    FOR EACH STATEMENT EXECUTE FUNCTION privacy.refuse_change();

-- Workers whose name, birth date, phone and address the retention purge erased: the NIK
-- stays as long as the money trail needs it.
CREATE TABLE privacy.erasures (
    id         bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    nik        text        NOT NULL,
    erased_at  timestamptz NOT NULL DEFAULT now(),
    cutoff     date        NOT NULL,     -- the purge's --before
    erased_by  text        NOT NULL,
    rows       integer     NOT NULL CHECK (rows >= 0)  -- rows whose personal data it erased
);
CREATE INDEX erasures_nik ON privacy.erasures (nik);
CREATE TRIGGER erasures_append_only BEFORE UPDATE OR DELETE ON privacy.erasures
    FOR EACH ROW EXECUTE FUNCTION privacy.refuse_change();
CREATE TRIGGER erasures_no_truncate BEFORE TRUNCATE ON privacy.erasures
    FOR EACH STATEMENT EXECUTE FUNCTION privacy.refuse_change();

REVOKE ALL ON SCHEMA privacy FROM PUBLIC;
REVOKE ALL ON ALL TABLES IN SCHEMA privacy FROM PUBLIC;
REVOKE ALL ON FUNCTION privacy.refuse_change() FROM PUBLIC;
GRANT USAGE ON SCHEMA privacy TO iuran_auditor;
GRANT SELECT ON privacy.personal_data_access, privacy.erasures TO iuran_auditor;
GRANT USAGE ON SCHEMA finance TO iuran_auditor;
-- the finance views (re-created by the migration runner) are readable by the auditor too
ALTER DEFAULT PRIVILEGES IN SCHEMA finance GRANT SELECT ON TABLES TO iuran_auditor;
-- Services that read personal data write their reads; nothing else.
GRANT USAGE ON SCHEMA privacy TO iuran_ledger_writer;
GRANT INSERT ON privacy.personal_data_access TO iuran_ledger_writer;
