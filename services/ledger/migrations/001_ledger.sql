-- The ledger: every contribution once, a double-entry journal that is append-only.
CREATE SCHEMA IF NOT EXISTS ledger;

-- One row per booked contribution: one worker, one month, whoever pays.
CREATE TABLE ledger.contributions (
    contribution_id        uuid PRIMARY KEY,
    nik                    text        NOT NULL CHECK (nik ~ '^[0-9]{16}$'),
    period                 text        NOT NULL CHECK (period ~ '^[0-9]{4}-(0[1-9]|1[0-2])$'),
    programme              text        NOT NULL,
    opd_code               text        NOT NULL,
    category               text        NOT NULL,
    kecamatan              text        NOT NULL,
    funding_source         text        NOT NULL,
    due_date               date        NOT NULL,
    amount_idr             bigint      NOT NULL CHECK (amount_idr > 0),
    jkk_idr                bigint      NOT NULL CHECK (jkk_idr >= 0),
    jkm_idr                bigint      NOT NULL CHECK (jkm_idr >= 0),
    schedule_id            uuid        NOT NULL,
    registration_event_id  uuid        NOT NULL,
    occurred_at            timestamptz,
    booked_at              timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT contributions_one_payer_per_month UNIQUE (nik, period),
    CONSTRAINT contributions_components_add_up CHECK (jkk_idr + jkm_idr = amount_idr)
);
CREATE INDEX contributions_programme_period ON ledger.contributions (programme, period);
CREATE INDEX contributions_registration ON ledger.contributions (registration_event_id);

-- The journal, in the spirit of TigerBeetle: each transfer moves an amount from one account
-- to another, so every entry balances to zero by construction. transfer_id is the
-- idempotency id, derived from the upstream id (contribution, payment) and the kind.
CREATE TABLE ledger.transfers (
    transfer_id      uuid        PRIMARY KEY,
    kind             text        NOT NULL CHECK (kind IN ('accrual', 'settlement', 'reversal')),
    debit_account    text        NOT NULL,
    credit_account   text        NOT NULL,
    amount_idr       bigint      NOT NULL CHECK (amount_idr > 0),
    contribution_id  uuid        REFERENCES ledger.contributions (contribution_id),
    reference        text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT transfers_two_accounts CHECK (debit_account <> credit_account)
);
CREATE INDEX transfers_contribution ON ledger.transfers (contribution_id);

-- Cancellations (deregistration): a reversal transfer plus this record, never an UPDATE.
CREATE TABLE ledger.cancellations (
    contribution_id        uuid        PRIMARY KEY REFERENCES ledger.contributions (contribution_id),
    schedule_id            uuid        NOT NULL,
    registration_event_id  uuid        NOT NULL,
    cancelled_at           timestamptz NOT NULL DEFAULT now()
);

-- A contribution whose worker-month is already booked by another programme or payer:
-- not booked, kept here so that a person can see who tried to pay twice.
CREATE TABLE ledger.duplicate_attempts (
    contribution_id        uuid        PRIMARY KEY,
    nik                    text        NOT NULL,
    period                 text        NOT NULL,
    programme              text        NOT NULL,
    opd_code               text        NOT NULL,
    amount_idr             bigint      NOT NULL,
    schedule_id            uuid        NOT NULL,
    registration_event_id  uuid        NOT NULL,
    held_by                uuid        NOT NULL REFERENCES ledger.contributions (contribution_id),
    seen_at                timestamptz NOT NULL DEFAULT now()
);

-- Booked money is never updated or deleted: the database refuses it, whatever the code does.
CREATE FUNCTION ledger.refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'ledger.% is append-only: % is not allowed', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;

CREATE TRIGGER contributions_append_only BEFORE UPDATE OR DELETE ON ledger.contributions
    FOR EACH ROW EXECUTE FUNCTION ledger.refuse_change();
CREATE TRIGGER contributions_no_truncate BEFORE TRUNCATE ON ledger.contributions
    FOR EACH STATEMENT EXECUTE FUNCTION ledger.refuse_change();
CREATE TRIGGER transfers_append_only BEFORE UPDATE OR DELETE ON ledger.transfers
    FOR EACH ROW EXECUTE FUNCTION ledger.refuse_change();
CREATE TRIGGER transfers_no_truncate BEFORE TRUNCATE ON ledger.transfers
    FOR EACH STATEMENT EXECUTE FUNCTION ledger.refuse_change();
CREATE TRIGGER cancellations_append_only BEFORE UPDATE OR DELETE ON ledger.cancellations
    FOR EACH ROW EXECUTE FUNCTION ledger.refuse_change();
CREATE TRIGGER cancellations_no_truncate BEFORE TRUNCATE ON ledger.cancellations
    FOR EACH STATEMENT EXECUTE FUNCTION ledger.refuse_change();
