-- The durable record of each registration event (REGISTRY.md): the validator's per-NIK
-- enrolment state and one row per registration event it decided. Both are written by the
-- validator in one transaction per batch, before it sends the batch's schedules and
-- rejections, so the system's memory of every enrolment never depends on the broker (the
-- embedded broker is in memory) or on the publisher's partitioner.
CREATE SCHEMA registry;

-- The validator's per-NIK enrolment state: a typed, versioned document (the system's
-- memory of every enrolment; never depends on the broker or on the publisher's partitioner).
-- `state` is services.domain.enrolment.WorkerState as JSON; `version` is its layout version
-- (read through enrolment.read_state, which upgrades older layouts on purpose).
CREATE TABLE registry.worker_state (
    nik        text PRIMARY KEY,
    version    integer NOT NULL,
    state      jsonb NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- One row per registration event the validator decided (events that could not be decoded
-- have no event id and go to the rejected topic only).
CREATE TABLE registry.decisions (
    event_id         uuid PRIMARY KEY,
    event_type       text NOT NULL CHECK (event_type IN ('registered', 'deregistered')),
    nik              text NOT NULL,
    programme        text NOT NULL,
    opd_code         text NOT NULL,      -- as the event claimed it (canonical when known)
    outcome          text NOT NULL CHECK (outcome IN ('accepted', 'partially_accepted', 'rejected')),
    periods          text[] NOT NULL DEFAULT '{}',  -- months accepted, or months stopped
    errors           jsonb NOT NULL DEFAULT '[]',   -- [{"field", "code", "message"}]
    warnings         jsonb NOT NULL DEFAULT '[]',   -- same shape
    schedule_ids     uuid[] NOT NULL DEFAULT '{}',  -- schedules emitted for it
    rejection_id     uuid,                          -- id of its record on the rejected topic
    source_topic     text NOT NULL,
    source_partition integer NOT NULL,
    source_offset    bigint NOT NULL,
    decided_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX decisions_nik ON registry.decisions (nik);
CREATE INDEX decisions_opd ON registry.decisions (opd_code, decided_at);

-- Nobody but the owner and these roles reads or writes the registry.
REVOKE ALL ON SCHEMA registry FROM PUBLIC;
REVOKE ALL ON ALL TABLES IN SCHEMA registry FROM PUBLIC;

-- The writer (the validator runs as it): reads and writes the registry. worker_state is a
-- snapshot (upserted); decisions are append-only (no UPDATE, no DELETE, no TRUNCATE).
GRANT USAGE ON SCHEMA registry TO iuran_ledger_writer;
GRANT SELECT, INSERT ON ALL TABLES IN SCHEMA registry TO iuran_ledger_writer;
GRANT UPDATE (version, state, updated_at) ON registry.worker_state TO iuran_ledger_writer;
ALTER DEFAULT PRIVILEGES IN SCHEMA registry GRANT SELECT, INSERT ON TABLES TO iuran_ledger_writer;

-- Finance and BI tools: the decisions through a view (the state documents stay internal).
CREATE VIEW finance.registration_decisions AS
SELECT event_id, event_type, nik, programme, opd_code, outcome, periods, errors, warnings,
       schedule_ids, rejection_id, source_topic, source_partition, source_offset, decided_at
  FROM registry.decisions;
GRANT SELECT ON finance.registration_decisions TO iuran_finance;
GRANT SELECT ON finance.registration_decisions TO iuran_ledger_writer;
