-- The end of the financial archive (docs/privacy.md): the purge replaces a worker's NIK by
-- its keyed pseudonym (services/privacy/pseudonyms.py) wherever the ledger, the registry,
-- the coverage totals and the record of processing hold it. Months, bills, payments and the
-- journal stay, under the pseudonym.

-- A NIK column holds 16 digits, or the pseudonym that replaced them: a version 8 UUID.
ALTER TABLE ledger.contributions DROP CONSTRAINT contributions_nik_check,
    ADD CONSTRAINT contributions_nik_or_pseudonym CHECK (
        nik ~ '^[0-9]{16}$'
        OR nik ~ '^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$');
ALTER TABLE ledger.early_cancellations DROP CONSTRAINT early_cancellations_nik_check,
    ADD CONSTRAINT early_cancellations_nik_or_pseudonym CHECK (
        nik ~ '^[0-9]{16}$'
        OR nik ~ '^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$');
ALTER TABLE ledger.held_contributions DROP CONSTRAINT held_contributions_nik_check,
    ADD CONSTRAINT held_contributions_nik_or_pseudonym CHECK (
        nik ~ '^[0-9]{16}$'
        OR nik ~ '^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$');

-- A booking and its cancellation name each other by (nik, period, slot): the purge changes
-- the NIK of both in one transaction, so it defers the two keys until both changed.
ALTER TABLE ledger.cancellations DROP CONSTRAINT cancellations_of_a_booking,
    ADD CONSTRAINT cancellations_of_a_booking FOREIGN KEY (nik, period, slot)
        REFERENCES ledger.contributions (nik, period, slot) DEFERRABLE INITIALLY IMMEDIATE;
ALTER TABLE ledger.contributions DROP CONSTRAINT contributions_previous_slot_cancelled,
    ADD CONSTRAINT contributions_previous_slot_cancelled FOREIGN KEY (nik, period, previous_slot)
        REFERENCES ledger.cancellations (nik, period, slot) DEFERRABLE INITIALLY IMMEDIATE;

-- What an erasure replaced: the personal fields (name, birth date, phone, address) at the
-- end of retention, or the NIK itself at the end of the archive (then `nik` is the
-- pseudonym, never the NIK).
ALTER TABLE privacy.erasures ADD COLUMN kind text NOT NULL DEFAULT 'personal_data'
    CONSTRAINT erasures_kind CHECK (kind IN ('personal_data', 'nik'));

-- JSON text with every quoted NIK that `pseudonyms` ({"<nik>": "<pseudonym>"}) names
-- replaced by its pseudonym (an outbox event or a read's filters may name many workers).
CREATE FUNCTION privacy.pseudonymise_json(body text, pseudonyms jsonb) RETURNS text
    LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    found text[];
    result text := body;
BEGIN
    FOR found IN SELECT regexp_matches(body, '"([0-9]{16})"', 'g') LOOP
        IF pseudonyms ? found[1] THEN
            result := replace(result, '"' || found[1] || '"',
                              '"' || (pseudonyms ->> found[1]) || '"');
        END IF;
    END LOOP;
    RETURN result;
END;
$$;
REVOKE ALL ON FUNCTION privacy.pseudonymise_json(text, jsonb) FROM PUBLIC;

-- Rectification (UU 27/2022 art. 30): a `corrected` event of the enrolling OPD. The
-- validator records each accepted correction here, in the transaction of its decision; the
-- earlier values stay (the events OPDs sent, the earlier corrections) as history, and the
-- latest correction of a field is its value. The retention purge erases the corrected name,
-- birth date, phone and kelurahan like those of the events OPDs sent.
ALTER TABLE registry.decisions DROP CONSTRAINT decisions_event_type_check,
    ADD CONSTRAINT decisions_event_type_check
        CHECK (event_type IN ('registered', 'deregistered', 'corrected'));
ALTER TABLE registry.submission_rows DROP CONSTRAINT submission_rows_event_type_check,
    ADD CONSTRAINT submission_rows_event_type_check
        CHECK (event_type IN ('registered', 'deregistered', 'corrected'));

CREATE TABLE registry.corrections (
    event_id     uuid        PRIMARY KEY REFERENCES registry.decisions (event_id),
    nik          text        NOT NULL,
    programme    text        NOT NULL,
    opd_code     text        NOT NULL,   -- the enrolling OPD, in the programme's spelling
    corrected    jsonb       NOT NULL,   -- {"full_name", "birth_date", "phone", "kecamatan",
                                         --  "kelurahan"}: the fields it corrects
    reason       text,
    occurred_at  timestamptz NOT NULL,
    recorded_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX corrections_nik ON registry.corrections (nik, occurred_at);
CREATE TRIGGER corrections_append_only BEFORE UPDATE OR DELETE ON registry.corrections
    FOR EACH ROW EXECUTE FUNCTION registry.refuse_submission_change();
CREATE TRIGGER corrections_no_truncate BEFORE TRUNCATE ON registry.corrections
    FOR EACH STATEMENT EXECUTE FUNCTION registry.refuse_submission_change();
