-- Booking checks that cost per statement, not per row, and the premium of each programme.
--
-- * One active payer per worker-month, for every generation, checked by the database
--   itself (migration 007 checked generation >= 1 only, and its claim that the unique index
--   suffices for generation 0 was wrong: a generation-0 row and a generation-1 row of one
--   month have different keys). After each INSERT into ledger.contributions one statement
--   takes the worker-month advisory locks of the rows inserted (in key order; a writer that
--   took them already, as book.py and budget.py do, gets them at once), then refuses the
--   statement when a row inserted shares its month with another row not cancelled. Under
--   READ COMMITTED the check's own snapshot is taken after the locks, so a payer that
--   committed meanwhile is seen.
-- * Every transfer of a contribution names a booked contribution: checked per statement
--   (one anti-join) instead of the foreign key's trigger per row. Contributions are never
--   deleted nor their ids changed (append-only triggers), so checking inserts suffices.
-- * The checks run over the batch with index probes (see the end), whatever the planner
--   estimates for the table.
-- * contributions_nik is dropped: the unique (nik, period, generation) index serves every
--   lookup by NIK.
-- * ledger.programme_premiums: the monthly premium of each programme as its configuration
--   says (the ledger records it on start); a contribution of another amount is refused.

CREATE FUNCTION ledger.check_one_payer() RETURNS trigger
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    bad text;
BEGIN
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        RAISE EXCEPTION 'contributions are booked only in a READ COMMITTED transaction'
            USING ERRCODE = 'feature_not_supported';
    END IF;
    EXECUTE $sql$
        SELECT count(pg_advisory_xact_lock(key))
          FROM (SELECT DISTINCT ledger.worker_month_lock(nik, period) AS key
                  FROM new_contributions ORDER BY key) keys
    $sql$;
    EXECUTE $sql$
        SELECT n.contribution_id::text
          FROM new_contributions n
          JOIN ledger.contributions c
            ON c.nik = n.nik AND c.period = n.period AND c.contribution_id <> n.contribution_id
         WHERE NOT EXISTS (SELECT 1 FROM ledger.cancellations x
                            WHERE x.contribution_id = c.contribution_id)
         LIMIT 1
    $sql$ INTO bad;
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION 'contribution % is not booked: its worker-month has another active payer', bad
            USING ERRCODE = 'unique_violation';
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER contributions_one_active_payer AFTER INSERT ON ledger.contributions
    REFERENCING NEW TABLE AS new_contributions
    FOR EACH STATEMENT EXECUTE FUNCTION ledger.check_one_payer();

CREATE FUNCTION ledger.check_transfer_contributions() RETURNS trigger
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    bad text;
BEGIN
    EXECUTE $sql$
        SELECT t.contribution_id::text
          FROM new_transfers t
         WHERE t.contribution_id IS NOT NULL
           AND NOT EXISTS (SELECT 1 FROM ledger.contributions c
                            WHERE c.contribution_id = t.contribution_id)
         LIMIT 1
    $sql$ INTO bad;
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION 'a transfer names contribution %, which is not booked', bad
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN NULL;
END;
$$;

ALTER TABLE ledger.transfers DROP CONSTRAINT transfers_contribution_id_fkey;
CREATE TRIGGER transfers_contribution_booked AFTER INSERT ON ledger.transfers
    REFERENCING NEW TABLE AS new_transfers
    FOR EACH STATEMENT EXECUTE FUNCTION ledger.check_transfer_contributions();

DROP INDEX ledger.contributions_nik;

-- The premium each programme's configuration sets, as recorded on each start where it
-- changed (append-only: the latest row of a programme applies).
CREATE TABLE ledger.programme_premiums (
    premium_id   bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    programme    text        NOT NULL,
    monthly_idr  bigint      NOT NULL CHECK (monthly_idr > 0),
    jkk_idr      bigint      NOT NULL CHECK (jkk_idr >= 0),
    jkm_idr      bigint      NOT NULL CHECK (jkm_idr >= 0),
    recorded_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT programme_premiums_add_up CHECK (jkk_idr + jkm_idr = monthly_idr)
);
CREATE INDEX programme_premiums_latest ON ledger.programme_premiums (programme, premium_id);
CREATE TRIGGER programme_premiums_append_only BEFORE UPDATE OR DELETE ON ledger.programme_premiums
    FOR EACH ROW EXECUTE FUNCTION ledger.refuse_change();
CREATE TRIGGER programme_premiums_no_truncate BEFORE TRUNCATE ON ledger.programme_premiums
    FOR EACH STATEMENT EXECUTE FUNCTION ledger.refuse_change();

-- The checks over a batch's transition table probe the indexes once per row: a hash or
-- merge join would read the whole of ledger.contributions once per batch, a cost that grows
-- with the table rather than with the batch.
ALTER FUNCTION ledger.check_one_payer() SET enable_hashjoin = off SET enable_mergejoin = off;
ALTER FUNCTION ledger.check_transfer_contributions()
    SET enable_hashjoin = off SET enable_mergejoin = off;
ALTER FUNCTION ledger.track_budget() SET enable_hashjoin = off SET enable_mergejoin = off;

REVOKE ALL ON FUNCTION ledger.check_one_payer() FROM PUBLIC;
REVOKE ALL ON FUNCTION ledger.check_transfer_contributions() FROM PUBLIC;
REVOKE ALL ON ledger.programme_premiums FROM PUBLIC;
GRANT SELECT, INSERT ON ledger.programme_premiums TO iuran_ledger_writer;
