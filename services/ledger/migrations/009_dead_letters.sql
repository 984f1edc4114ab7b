-- Nothing a service reads is dropped silently.
--
-- Dead letters, as Kafka Connect keeps them: a record a service cannot process for a reason
-- other than a transient outage (a value out of range, a constraint it breaks, ...) is kept
-- here with its original bytes, where it came from (topic/partition/offset), a stable reason
-- code and the exception seen, and its offset is committed so that the stream goes on.
-- The source position is unique: a replay records nothing twice.
CREATE TABLE ledger.dead_letters (
    dead_letter_id  bigserial   PRIMARY KEY,
    service         text        NOT NULL,
    topic           text        NOT NULL,
    partition       integer     NOT NULL,
    "offset"        bigint      NOT NULL,
    key             bytea,
    value           bytea,
    reason          text        NOT NULL,
    detail          text        NOT NULL DEFAULT '',
    recorded_at     timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT dead_letters_one_per_record UNIQUE (service, topic, partition, "offset")
);
CREATE INDEX dead_letters_recorded ON ledger.dead_letters (recorded_at);

-- A contribution of a valid schedule that the ledger could neither book, hold nor record as
-- a duplicate: e.g. a month paid again while its earlier generation is still active, or a
-- second generation-0 row of a worker-month in the same batch whose first row was held.
-- Kept with why, for a person to decide.
CREATE TABLE ledger.refused_contributions (
    refused_id             bigserial   PRIMARY KEY,
    contribution_id        uuid        NOT NULL,
    nik                    text        NOT NULL,
    period                 text        NOT NULL,
    generation             integer     NOT NULL,
    programme              text        NOT NULL,
    opd_code               text        NOT NULL,
    funding_source         text        NOT NULL,
    due_date               date        NOT NULL,
    amount_idr             bigint      NOT NULL,
    schedule_id            uuid        NOT NULL,
    registration_event_id  uuid        NOT NULL,
    reason                 text        NOT NULL,
    seen_at                timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT refused_once_per_schedule UNIQUE (contribution_id, schedule_id)
);
CREATE INDEX refused_contributions_month ON ledger.refused_contributions (nik, period);

-- Both are records of what happened: never updated or deleted.
CREATE TRIGGER dead_letters_append_only BEFORE UPDATE OR DELETE ON ledger.dead_letters
    FOR EACH ROW EXECUTE FUNCTION ledger.refuse_change();
CREATE TRIGGER dead_letters_no_truncate BEFORE TRUNCATE ON ledger.dead_letters
    FOR EACH STATEMENT EXECUTE FUNCTION ledger.refuse_change();
CREATE TRIGGER refused_contributions_append_only
    BEFORE UPDATE OR DELETE ON ledger.refused_contributions
    FOR EACH ROW EXECUTE FUNCTION ledger.refuse_change();
CREATE TRIGGER refused_contributions_no_truncate BEFORE TRUNCATE ON ledger.refused_contributions
    FOR EACH STATEMENT EXECUTE FUNCTION ledger.refuse_change();

-- Finance and ops list dead letters here. The value is shown as text with every byte that
-- is not printable ASCII escaped (encode 'escape'), so any bytes at all can be shown. Like
-- the other finance views it carries personal data (a schedule holds a NIK): the API and
-- the CLI mask digit runs for whoever may not see them.
CREATE VIEW finance.dead_letters AS
SELECT dead_letter_id, service, topic, partition, "offset", reason, detail,
       encode(key, 'escape') AS key_text, encode(value, 'escape') AS value_text,
       octet_length(value) AS value_bytes, recorded_at
  FROM ledger.dead_letters;

CREATE VIEW finance.refused_contributions AS
SELECT f.refused_id, f.contribution_id, f.nik, f.programme, f.period, f.generation,
       f.opd_code, f.funding_source, f.due_date, f.amount_idr, f.reason, f.seen_at,
       f.schedule_id, f.registration_event_id,
       EXISTS (SELECT 1 FROM ledger.contributions c
                WHERE c.contribution_id = f.contribution_id) AS booked_since
  FROM ledger.refused_contributions f;

-- The grants of 005, explicitly (the default privileges give the same).
REVOKE ALL ON ledger.dead_letters, ledger.refused_contributions FROM PUBLIC;
REVOKE ALL ON finance.dead_letters, finance.refused_contributions FROM PUBLIC;
GRANT SELECT, INSERT ON ledger.dead_letters, ledger.refused_contributions TO iuran_ledger_writer;
GRANT USAGE ON SEQUENCE ledger.dead_letters_dead_letter_id_seq,
    ledger.refused_contributions_refused_id_seq TO iuran_ledger_writer;
GRANT SELECT ON finance.dead_letters, finance.refused_contributions
    TO iuran_ledger_writer, iuran_finance;
