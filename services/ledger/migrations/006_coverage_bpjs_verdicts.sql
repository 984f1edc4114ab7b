-- Coverage split by BPJS's verdict: the projector folds the workers' standing verdicts
-- (iuran.ledger.v1 `bpjs_verdicts`) so that active workers are counted as verified by BPJS
-- (covered) or awaiting BPJS (months booked, no verdict yet).

-- Per programme and worker, the standing verdict the projector applied: the latest by
-- verified_at (then by outbox_id), whatever order the events came in. The NIK is kept as
-- a number, as in coverage.workers.
CREATE TABLE coverage.verdicts (
    programme    text        NOT NULL,
    nik          bigint      NOT NULL,
    status       text        NOT NULL CHECK (status IN ('verified', 'rejected')),
    verified_at  timestamptz NOT NULL,
    outbox_id    bigint      NOT NULL,
    PRIMARY KEY (programme, nik)
);

-- Per programme, how many times a standing verdict was applied: it only grows, and is part
-- of the change marker a reader polls (services/ledger/coverage.py).
CREATE TABLE coverage.verdict_changes (
    programme  text   PRIMARY KEY,
    changes    bigint NOT NULL DEFAULT 0
);

-- Of a group's active workers, those whose standing verdict is verified and those with no
-- verdict (a rejected worker's months are cancelled, or billed and then credited).
ALTER TABLE coverage.groups
    ADD COLUMN verified_workers       bigint NOT NULL DEFAULT 0,
    ADD COLUMN awaiting_bpjs_workers  bigint NOT NULL DEFAULT 0;

-- No verdict was projected before: every active worker awaits BPJS until the ledger's
-- verdicts are replayed (`iuran coverage` shows both figures).
UPDATE coverage.groups SET awaiting_bpjs_workers = active_workers;
