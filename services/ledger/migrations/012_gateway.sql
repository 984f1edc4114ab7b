-- The registration gateway (POST /v1/registrations) and what became of every event.
--
-- A submission is one request of an OPD: a JSON array of events or a CSV/XLSX upload. Each
-- of its rows is recorded with its row number, the event id it was published under (none
-- when the gateway's checks refused the row) and the row's errors. The Idempotency-Key of a
-- request is unique per OPD: the same request sent again is answered from here and
-- publishes nothing twice.
CREATE TABLE registry.submissions (
    submission_id    uuid        PRIMARY KEY,
    opd_code         text        NOT NULL,
    token_name       text        NOT NULL,
    idempotency_key  text        CHECK (length(idempotency_key) BETWEEN 1 AND 200),
    request_hash     text        NOT NULL,  -- sha256 of the body and its parameters
    source           text        NOT NULL CHECK (source IN ('json', 'csv', 'xlsx')),
    programme        text,                  -- of an upload; a JSON event names its own
    row_count        integer     NOT NULL CHECK (row_count >= 0),
    submitted_at     timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT submissions_one_per_key UNIQUE (opd_code, idempotency_key)
);
CREATE INDEX submissions_opd ON registry.submissions (opd_code, submitted_at);

CREATE TABLE registry.submission_rows (
    submission_id  uuid        NOT NULL REFERENCES registry.submissions (submission_id),
    row_number     integer     NOT NULL CHECK (row_number >= 1),
    event_id       uuid,                  -- NULL: refused by the gateway's checks
    event_type     text        CHECK (event_type IN ('registered', 'deregistered')),
    nik            text,                  -- as written (for the OPD's own view)
    programme      text,
    errors         jsonb       NOT NULL DEFAULT '[]',  -- [{"field", "code", "message"}]
    event          text,                  -- the event's JSON exactly as published
    published_at   timestamptz,           -- acknowledged by the broker
    PRIMARY KEY (submission_id, row_number),
    CONSTRAINT submission_rows_event_or_errors CHECK ((event_id IS NULL) = (event IS NULL))
);
CREATE INDEX submission_rows_event ON registry.submission_rows (event_id);
CREATE INDEX submission_rows_nik ON registry.submission_rows (nik);

-- Only a row's published_at ever changes (once, from NULL); nothing is deleted.
CREATE FUNCTION registry.refuse_submission_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND to_jsonb(OLD) ? 'published_at'
       AND to_jsonb(OLD) ->> 'published_at' IS NULL
       AND (to_jsonb(NEW) - 'published_at') = (to_jsonb(OLD) - 'published_at') THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'registry.% is append-only: % is not allowed', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;
CREATE TRIGGER submissions_append_only BEFORE UPDATE OR DELETE ON registry.submissions
    FOR EACH ROW EXECUTE FUNCTION registry.refuse_submission_change();
CREATE TRIGGER submission_rows_append_only BEFORE UPDATE OR DELETE ON registry.submission_rows
    FOR EACH ROW EXECUTE FUNCTION registry.refuse_submission_change();

-- The outcome of one event is looked up by registration_event_id in every ledger table.
CREATE INDEX held_contributions_registration ON ledger.held_contributions (registration_event_id);
CREATE INDEX held_resolutions_schedule ON ledger.held_resolutions (schedule_id);
CREATE INDEX duplicate_attempts_registration ON ledger.duplicate_attempts (registration_event_id);
CREATE INDEX cancellations_registration ON ledger.cancellations (registration_event_id);
CREATE INDEX cancellations_refused_registration
    ON ledger.cancellations_refused (registration_event_id);
CREATE INDEX refused_contributions_registration
    ON ledger.refused_contributions (registration_event_id);

-- Every month the ledger holds for a registration event, and what it is: booked, held,
-- cancelled (booked or held, stopped since), duplicate (paid by another payer), refused
-- (finance.refused_contributions), and for a deregistration: stopped (months it cancelled)
-- or too_late (already billed or paid: finance.worker_history says cancellation_refused).
CREATE VIEW finance.registration_months AS
SELECT c.registration_event_id AS event_id,
       CASE WHEN x.contribution_id IS NULL THEN 'booked' ELSE 'cancelled' END AS what,
       c.period
  FROM ledger.contributions c
  LEFT JOIN ledger.cancellations x ON x.contribution_id = c.contribution_id
UNION ALL
SELECT h.registration_event_id,
       CASE r.outcome WHEN 'cancelled' THEN 'cancelled' WHEN 'duplicate' THEN 'duplicate'
                      ELSE 'held' END,
       h.period
  FROM ledger.held_contributions h
  LEFT JOIN ledger.held_resolutions r ON r.contribution_id = h.contribution_id
 WHERE r.outcome IS DISTINCT FROM 'booked'  -- a hold booked since is a contribution
UNION ALL
SELECT registration_event_id, 'duplicate', period FROM ledger.duplicate_attempts
UNION ALL
SELECT registration_event_id, 'refused', period FROM ledger.refused_contributions
UNION ALL
SELECT x.registration_event_id, 'stopped', c.period
  FROM ledger.cancellations x JOIN ledger.contributions c USING (contribution_id)
UNION ALL
SELECT d.event_id, 'stopped', h.period
  FROM registry.decisions d
  CROSS JOIN LATERAL unnest(d.schedule_ids) AS s(schedule_id)
  JOIN ledger.held_resolutions r ON r.schedule_id = s.schedule_id AND r.outcome = 'cancelled'
  JOIN ledger.held_contributions h ON h.contribution_id = r.contribution_id
 WHERE d.event_type = 'deregistered'
UNION ALL
SELECT f.registration_event_id, 'too_late', c.period
  FROM ledger.cancellations_refused f JOIN ledger.contributions c USING (contribution_id);

-- What became of each registration event the validator decided (an event it has not
-- decided yet has no row here: pending), from its decision and the ledger's months:
--   rejected   the validator refused it (errors carry the codes);
--   accepted   decided, nothing in the ledger yet (or nothing to book: a deregistration of
--              months not paid);
--   booked     months booked (some may be duplicates, paid by another payer);
--   held       at least one month waits for budget;
--   cancelled  a deregistration that stopped months, or a registration whose months were
--              all stopped since;
--   refused    the ledger booked none of it: paid by another payer, refused, or (for a
--              deregistration) every month already billed or paid.
-- final: nothing more happens to it by itself (a held month may still be booked when the
-- budget is raised). One row per event; a lookup by event_id reads only its rows.
CREATE VIEW finance.registration_outcomes AS
WITH outcome AS (
    SELECT d.event_id, d.event_type, d.nik, d.programme, d.opd_code, d.outcome AS decision,
           d.periods AS decided_periods, d.errors, d.warnings, d.decided_at, d.schedule_ids,
           coalesce(m.booked, '{}') AS booked_periods, coalesce(m.held, '{}') AS held_periods,
           coalesce(m.cancelled, '{}') AS cancelled_periods,
           coalesce(m.duplicate, '{}') AS duplicate_periods,
           coalesce(m.refused, '{}') AS refused_periods,
           coalesce(m.too_late, '{}') AS cancellation_refused_periods
      FROM registry.decisions d
      LEFT JOIN LATERAL (
          SELECT array_agg(DISTINCT period) FILTER (WHERE what = 'booked') AS booked,
                 array_agg(DISTINCT period) FILTER (WHERE what = 'held') AS held,
                 array_agg(DISTINCT period) FILTER (WHERE what IN ('cancelled', 'stopped'))
                     AS cancelled,
                 array_agg(DISTINCT period) FILTER (WHERE what = 'duplicate') AS duplicate,
                 array_agg(DISTINCT period) FILTER (WHERE what = 'refused') AS refused,
                 array_agg(DISTINCT period) FILTER (WHERE what = 'too_late') AS too_late
            FROM finance.registration_months rm
           WHERE rm.event_id = d.event_id) m ON true
)
SELECT o.*,
       CASE WHEN o.decision = 'rejected' THEN 'rejected'
            WHEN o.event_type = 'deregistered' AND cardinality(o.cancelled_periods) > 0
                 THEN 'cancelled'
            WHEN o.event_type = 'deregistered' AND cardinality(o.cancellation_refused_periods) > 0
                 THEN 'refused'
            WHEN cardinality(o.held_periods) > 0 THEN 'held'
            WHEN cardinality(o.booked_periods) > 0 THEN 'booked'
            WHEN cardinality(o.cancelled_periods) > 0 THEN 'cancelled'
            WHEN cardinality(o.duplicate_periods) + cardinality(o.refused_periods) > 0
                 THEN 'refused'
            ELSE 'accepted' END AS status,
       -- nothing more will happen by itself: decided and either nothing to book or the
       -- ledger has something for it (held months may still be booked by a budget raise)
       (o.decision = 'rejected' OR cardinality(o.schedule_ids) = 0
        OR cardinality(o.booked_periods) + cardinality(o.held_periods)
           + cardinality(o.cancelled_periods) + cardinality(o.duplicate_periods)
           + cardinality(o.refused_periods) + cardinality(o.cancellation_refused_periods) > 0)
           AS final
  FROM outcome o;

-- The grants of 005 and 008: the writer role (the services) reads and records submissions
-- and may set published_at; finance reads the outcomes view (default privileges).
REVOKE ALL ON registry.submissions, registry.submission_rows FROM PUBLIC;
REVOKE ALL ON finance.registration_months, finance.registration_outcomes FROM PUBLIC;
REVOKE ALL ON FUNCTION registry.refuse_submission_change() FROM PUBLIC;
GRANT SELECT, INSERT ON registry.submissions, registry.submission_rows TO iuran_ledger_writer;
GRANT UPDATE (published_at) ON registry.submission_rows TO iuran_ledger_writer;
GRANT SELECT ON finance.registration_months, finance.registration_outcomes
    TO iuran_finance, iuran_ledger_writer;
