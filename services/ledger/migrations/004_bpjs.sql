-- BPJS in the loop (docs/bpjs.md): what iuran submitted to BPJS for collective
-- registration, BPJS's verdicts on each worker (a KPJ or a reason), and BPJS's bills with
-- their lines, each kept as received. All append-only: a later verdict supersedes an
-- earlier one by being later (verified_at), never by an UPDATE.

-- One run of `iuran bpjs submission`: the file written and how many workers it lists.
CREATE TABLE ledger.bpjs_submissions (
    submission_id  uuid        PRIMARY KEY,
    programme      text        NOT NULL,
    file_name      text        NOT NULL CHECK (length(file_name) BETWEEN 1 AND 500),
    row_count      integer     NOT NULL CHECK (row_count >= 0),
    submitted_by   text        NOT NULL CHECK (length(submitted_by) BETWEEN 1 AND 200),
    submitted_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX bpjs_submissions_programme ON ledger.bpjs_submissions (programme, submitted_at);

-- One row of a submission file: the worker, the reference written on the row and the
-- first month asked for.
CREATE TABLE ledger.bpjs_submission_rows (
    submission_id  uuid NOT NULL REFERENCES ledger.bpjs_submissions (submission_id),
    reference      text NOT NULL UNIQUE,
    programme      text NOT NULL,
    nik            text NOT NULL CHECK (  -- 16 digits, or the pseudonym that replaced them
        nik ~ '^[0-9]{16}$'
        OR nik ~ '^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$'),
    first_period   text NOT NULL CHECK (first_period ~ '^[0-9]{4}-(0[1-9]|1[0-2])$'),
    PRIMARY KEY (submission_id, nik)
);
CREATE INDEX bpjs_submission_rows_worker ON ledger.bpjs_submission_rows (programme, nik);

-- Every verdict received (iuran.bpjs.verifications.v1), once per verification_id; the
-- latest by verified_at (then by arrival) is the worker's standing.
CREATE TABLE ledger.bpjs_verifications (
    verification_id   uuid        PRIMARY KEY,
    seq               bigint      GENERATED ALWAYS AS IDENTITY UNIQUE,
    programme         text        NOT NULL,
    nik               text        NOT NULL CHECK (  -- 16 digits, or the pseudonym that replaced them
        nik ~ '^[0-9]{16}$'
        OR nik ~ '^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$'),
    status            text        NOT NULL CHECK (status IN ('verified', 'rejected')),
    kpj               text,
    effective_period  text CHECK (effective_period ~ '^[0-9]{4}-(0[1-9]|1[0-2])$'),
    reason_code       text,
    reason            text,
    verified_at       timestamptz NOT NULL,
    received_at       timestamptz NOT NULL DEFAULT now(),
    fingerprint       text        NOT NULL,  -- sha256 of the verdict's fields
    cancelled_months  integer     NOT NULL DEFAULT 0 CHECK (cancelled_months >= 0),
    CONSTRAINT bpjs_verifications_complete CHECK (
        (status = 'verified' AND kpj IS NOT NULL AND effective_period IS NOT NULL)
        OR (status = 'rejected' AND reason_code IS NOT NULL AND reason IS NOT NULL))
);
CREATE INDEX bpjs_verifications_worker
    ON ledger.bpjs_verifications (programme, nik, verified_at DESC, seq DESC);
CREATE INDEX bpjs_verifications_nik ON ledger.bpjs_verifications (nik);

-- The months a BPJS rejection cancelled (booked or held, not billed), for the validator: a
-- worker whose OPD corrects the data and sends it again is enrolled anew for those months.
CREATE TABLE ledger.bpjs_cancelled_months (
    contribution_id  uuid PRIMARY KEY,
    verification_id  uuid NOT NULL,
    programme        text NOT NULL,
    nik              text NOT NULL CHECK (  -- 16 digits, or the pseudonym that replaced them
        nik ~ '^[0-9]{16}$'
        OR nik ~ '^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$'),
    period           text NOT NULL CHECK (period ~ '^[0-9]{4}-(0[1-9]|1[0-2])$')
);
CREATE INDEX bpjs_cancelled_months_nik ON ledger.bpjs_cancelled_months (nik);

-- Every BPJS bill received (iuran.bpjs.bills.v1), once per bpjs_bill_id, with its lines.
CREATE TABLE ledger.bpjs_bills (
    bpjs_bill_id  text        PRIMARY KEY CHECK (length(bpjs_bill_id) BETWEEN 1 AND 100),
    programme     text        NOT NULL,
    period        text        NOT NULL CHECK (period ~ '^[0-9]{4}-(0[1-9]|1[0-2])$'),
    issued_at     timestamptz NOT NULL,
    lines         integer     NOT NULL CHECK (lines > 0),
    amount_idr    bigint      NOT NULL CHECK (amount_idr >= 0),
    fingerprint   text        NOT NULL,
    received_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX bpjs_bills_programme ON ledger.bpjs_bills (programme, period);

CREATE TABLE ledger.bpjs_bill_lines (
    bpjs_bill_id  text   NOT NULL REFERENCES ledger.bpjs_bills (bpjs_bill_id),
    line_number   integer NOT NULL CHECK (line_number >= 1),
    nik           text   NOT NULL CHECK (  -- 16 digits, or the pseudonym that replaced them
        nik ~ '^[0-9]{16}$'
        OR nik ~ '^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$'),
    kpj           text,
    period        text   NOT NULL CHECK (period ~ '^[0-9]{4}-(0[1-9]|1[0-2])$'),
    jkk_idr       bigint NOT NULL CHECK (jkk_idr >= 0),
    jkm_idr       bigint NOT NULL CHECK (jkm_idr >= 0),
    jht_idr       bigint CHECK (jht_idr >= 0),
    amount_idr    bigint NOT NULL CHECK (amount_idr >= 0),
    PRIMARY KEY (bpjs_bill_id, line_number),
    CONSTRAINT bpjs_bill_lines_add_up CHECK (jkk_idr + jkm_idr + coalesce(jht_idr, 0) = amount_idr)
);
CREATE INDEX bpjs_bill_lines_worker_month ON ledger.bpjs_bill_lines (nik, period);
CREATE INDEX bpjs_bill_lines_period ON ledger.bpjs_bill_lines (bpjs_bill_id, period);

CREATE TRIGGER bpjs_submissions_append_only BEFORE UPDATE OR DELETE ON ledger.bpjs_submissions
    FOR EACH ROW EXECUTE FUNCTION ledger.refuse_change();
CREATE TRIGGER bpjs_submission_rows_append_only
    BEFORE UPDATE OR DELETE ON ledger.bpjs_submission_rows
    FOR EACH ROW EXECUTE FUNCTION ledger.refuse_change();
CREATE TRIGGER bpjs_verifications_append_only
    BEFORE UPDATE OR DELETE ON ledger.bpjs_verifications
    FOR EACH ROW EXECUTE FUNCTION ledger.refuse_change();
CREATE TRIGGER bpjs_cancelled_months_append_only
    BEFORE UPDATE OR DELETE ON ledger.bpjs_cancelled_months
    FOR EACH ROW EXECUTE FUNCTION ledger.refuse_change();
CREATE TRIGGER bpjs_bills_append_only BEFORE UPDATE OR DELETE ON ledger.bpjs_bills
    FOR EACH ROW EXECUTE FUNCTION ledger.refuse_change();
CREATE TRIGGER bpjs_bill_lines_append_only BEFORE UPDATE OR DELETE ON ledger.bpjs_bill_lines
    FOR EACH ROW EXECUTE FUNCTION ledger.refuse_change();
