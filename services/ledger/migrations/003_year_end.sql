-- The end of a programme year and the start of the next: each programme's time zone (the
-- day finance.cover_expiry counts months from), recorded from the programme file by the
-- ledger service at start; a zone the file changes is a new row (the latest is in force).
CREATE TABLE ledger.programme_time_zones (
    zone_id      bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    programme    text        NOT NULL,
    timezone     text        NOT NULL CHECK (length(timezone) BETWEEN 1 AND 64),
    recorded_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX programme_time_zones_latest ON ledger.programme_time_zones (programme, zone_id);
CREATE TRIGGER programme_time_zones_append_only BEFORE UPDATE OR DELETE
    ON ledger.programme_time_zones FOR EACH ROW EXECUTE FUNCTION ledger.refuse_change();
CREATE TRIGGER programme_time_zones_no_truncate BEFORE TRUNCATE
    ON ledger.programme_time_zones FOR EACH STATEMENT EXECUTE FUNCTION ledger.refuse_change();

-- A renewal's priority order (`iuran renew`, the `[renewal] priority` of the programme it
-- renews into): each renewed worker's place, 1 first. Months held for budget wait by this
-- place before the months of workers no renewal ranked (new enrolments), then in the order
-- they were held (services/ledger/model.py). A worker is ranked once per programme: a second
-- run of the renewal keeps the first place.
CREATE TABLE ledger.renewal_ranks (
    programme     text        NOT NULL,
    nik           text        NOT NULL CHECK (  -- 16 digits, or the pseudonym that replaced them
        nik ~ '^[0-9]{16}$'
        OR nik ~ '^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$'),
    rank          bigint      NOT NULL CHECK (rank >= 1),
    renewal_of    text        NOT NULL,   -- the programme renewed from
    priority      text        NOT NULL,   -- the order, as the programme file declares it
    requested_by  text        NOT NULL CHECK (length(requested_by) BETWEEN 1 AND 100),
    requested_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (programme, nik)
);
CREATE INDEX renewal_ranks_order ON ledger.renewal_ranks (programme, rank);
CREATE TRIGGER renewal_ranks_append_only BEFORE UPDATE OR DELETE ON ledger.renewal_ranks
    FOR EACH ROW EXECUTE FUNCTION ledger.refuse_change();
CREATE TRIGGER renewal_ranks_no_truncate BEFORE TRUNCATE ON ledger.renewal_ranks
    FOR EACH STATEMENT EXECUTE FUNCTION ledger.refuse_change();
