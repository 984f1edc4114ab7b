-- The ledger's schema: every table, constraint, index, trigger and grant, grouped by what it
-- is for. Views and the functions they and the triggers call live one file per object in
-- services/ledger/views/ and services/ledger/functions/ (applied after this file, in the
-- order of services/ledger/objects.txt). Later changes are 002_*.sql, 003_*.sql, ...
--
-- Booked money is never updated or deleted: the append-only tables refuse UPDATE, DELETE and
-- TRUNCATE with a trigger, whatever the code or the role does.

CREATE SCHEMA ledger;    -- the system of record: the journal and everything it books
CREATE SCHEMA finance;   -- read-only views for finance and BI tools (services/ledger/views)
CREATE SCHEMA registry;  -- the validator's enrolment state and the gateway's submissions

-- ---------------------------------------------------------------------------------------
-- Roles and grants
-- ---------------------------------------------------------------------------------------

-- Least-privileged roles. Roles are cluster-wide: create them only when missing (another
-- database of the cluster may have created them), never with a password. To log in, grant
-- them to a login role, e.g. CREATE ROLE bi LOGIN PASSWORD '...' IN ROLE iuran_finance;
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'iuran_ledger_writer') THEN
        BEGIN
            CREATE ROLE iuran_ledger_writer NOLOGIN;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
        END;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'iuran_finance') THEN
        BEGIN
            CREATE ROLE iuran_finance NOLOGIN;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
        END;
    END IF;
END;
$$;

-- Nobody but the owner and these roles reads or writes the ledger, the registry or the
-- finance views.
REVOKE ALL ON SCHEMA ledger FROM PUBLIC;
REVOKE ALL ON SCHEMA finance FROM PUBLIC;
REVOKE ALL ON SCHEMA registry FROM PUBLIC;

-- The ledger writer (every service runs as it): reads and inserts; no UPDATE but of the
-- columns granted below (guarded by triggers), no DELETE, no TRUNCATE, no DDL.
GRANT USAGE ON SCHEMA ledger TO iuran_ledger_writer;
GRANT USAGE ON SCHEMA finance TO iuran_ledger_writer;
GRANT USAGE ON SCHEMA registry TO iuran_ledger_writer;
-- Finance and BI tools: SELECT on the finance views, nothing else.
GRANT USAGE ON SCHEMA finance TO iuran_finance;

-- Every table and sequence the owner creates (here and in later migrations) gets these
-- grants; views and functions state theirs in their own files as well.
ALTER DEFAULT PRIVILEGES IN SCHEMA ledger GRANT SELECT, INSERT ON TABLES TO iuran_ledger_writer;
ALTER DEFAULT PRIVILEGES IN SCHEMA ledger GRANT USAGE ON SEQUENCES TO iuran_ledger_writer;
ALTER DEFAULT PRIVILEGES IN SCHEMA finance GRANT SELECT ON TABLES TO iuran_ledger_writer;
ALTER DEFAULT PRIVILEGES IN SCHEMA finance GRANT SELECT ON TABLES TO iuran_finance;
ALTER DEFAULT PRIVILEGES IN SCHEMA registry GRANT SELECT, INSERT ON TABLES TO iuran_ledger_writer;

-- The append-only guard of every ledger table below.
CREATE FUNCTION ledger.refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'ledger.% is append-only: % is not allowed', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;

-- ---------------------------------------------------------------------------------------
-- The journal: accounts and transfers; the contribution subledger and its cancellations
-- ---------------------------------------------------------------------------------------

-- The chart of accounts (services/ledger/accounts.py) as data: one row per account, created
-- when a programme gets its allocation or receives a payment. An account's code is
-- kind:purpose:owner, its owner a programme or (cash) a funding source.
CREATE TABLE ledger.accounts (
    code         text        PRIMARY KEY,
    kind         text        NOT NULL CHECK (kind IN ('asset', 'liability', 'expense')),
    purpose      text        NOT NULL CHECK (purpose ~ '^[a-z_]+$'),
    owner        text        NOT NULL CHECK (length(owner) BETWEEN 1 AND 100),
    description  text        NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT accounts_code_of_its_parts CHECK (code = kind || ':' || purpose || ':' || owner)
);

-- The journal, in the spirit of TigerBeetle: each transfer moves an amount from one account
-- to another, so every entry balances to zero by construction. Bookings and cancellations
-- post in batches: one accrual per batch and allocation carries all the months it booked
-- (each subledger row names it), one reversal per batch and allocation the months it
-- cancelled. A settlement names the bill line's contribution; payment_id is the payment
-- whose money a receipt, settlement, refund or carry-over moves. A void reverses a receipt
-- that should never have been taken (unapplied -> cash); refund_received is money BPJS
-- returned, as the bank statement shows it (refund_due -> cash).
CREATE TABLE ledger.transfers (
    transfer_id      uuid        PRIMARY KEY,
    kind             text        NOT NULL CHECK (kind IN (
        'accrual', 'settlement', 'reversal', 'receipt', 'refund', 'carry_over', 'void',
        'refund_received')),
    debit_account    text        NOT NULL REFERENCES ledger.accounts (code),
    credit_account   text        NOT NULL REFERENCES ledger.accounts (code),
    amount_idr       bigint      NOT NULL CHECK (amount_idr > 0),
    contribution_id  uuid,       -- REFERENCES ledger.contributions, added below
    reference        text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    payment_id       uuid,       -- REFERENCES ledger.payments, added with that table below
    CONSTRAINT transfers_two_accounts CHECK (debit_account <> credit_account)
);
CREATE INDEX transfers_contribution ON ledger.transfers (contribution_id)
    WHERE contribution_id IS NOT NULL;
CREATE INDEX transfers_payment ON ledger.transfers (payment_id) WHERE payment_id IS NOT NULL;
-- One settlement per contribution, one receipt per payment, whatever the transfer id.
CREATE UNIQUE INDEX transfers_one_settlement ON ledger.transfers (contribution_id)
    WHERE kind = 'settlement';
CREATE UNIQUE INDEX transfers_one_receipt ON ledger.transfers (payment_id)
    WHERE kind = 'receipt';

-- The subledger: one row per booked month (one worker, one month), naming the accrual that
-- carries it. slot counts the bookings of the worker-month: 0 the first time, 1 after the
-- first was cancelled, and so on. One active payer per worker-month whoever pays: a slot is
-- booked once (unique), and slot n > 0 only once slot n - 1 was cancelled (the foreign key
-- on previous_slot, added below) — so at most the latest slot of a month is active.
-- generation is the validator's count of the worker's cancelled enrolments of the month.
CREATE TABLE ledger.contributions (
    contribution_id        uuid        PRIMARY KEY,
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
    generation             integer     NOT NULL DEFAULT 0
        CONSTRAINT contributions_generation_not_negative CHECK (generation >= 0),
    slot                   integer     NOT NULL CHECK (slot >= 0),
    previous_slot          integer     GENERATED ALWAYS AS (
                                           CASE WHEN slot > 0 THEN slot - 1 END) STORED,
    posting_id             uuid        NOT NULL,
    CONSTRAINT contributions_components_add_up CHECK (jkk_idr + jkm_idr = amount_idr),
    -- it also serves every lookup by NIK, and by worker-month
    CONSTRAINT contributions_one_booking_per_slot UNIQUE (nik, period, slot)
);
CREATE INDEX contributions_programme_period ON ledger.contributions (programme, period);
CREATE INDEX contributions_registration ON ledger.contributions (registration_event_id);
-- keyset paging
CREATE INDEX contributions_period_id ON ledger.contributions (period, contribution_id);

-- Cancellations (deregistration): a record naming the reversal that carries it, never an
-- UPDATE. A month cancelled after it was billed is reversed into a credit at BPJS.
CREATE TABLE ledger.cancellations (
    contribution_id        uuid        PRIMARY KEY REFERENCES ledger.contributions (contribution_id),
    schedule_id            uuid        NOT NULL,
    registration_event_id  uuid        NOT NULL,
    cancelled_at           timestamptz NOT NULL DEFAULT now(),
    nik                    text        NOT NULL,
    period                 text        NOT NULL,
    slot                   integer     NOT NULL,
    posting_id             uuid        NOT NULL,
    CONSTRAINT cancellations_of_a_booking FOREIGN KEY (nik, period, slot)
        REFERENCES ledger.contributions (nik, period, slot),
    CONSTRAINT cancellations_one_per_slot UNIQUE (nik, period, slot)
);
CREATE INDEX cancellations_registration ON ledger.cancellations (registration_event_id);

ALTER TABLE ledger.contributions ADD CONSTRAINT contributions_previous_slot_cancelled
    FOREIGN KEY (nik, period, previous_slot) REFERENCES ledger.cancellations (nik, period, slot);
ALTER TABLE ledger.transfers ADD CONSTRAINT transfers_contribution_booked
    FOREIGN KEY (contribution_id) REFERENCES ledger.contributions (contribution_id);

-- Cancellations that arrived before the months they cancel (tombstones), with the months'
-- columns as the cancellation carried them: those months are never booked.
CREATE TABLE ledger.early_cancellations (
    contribution_id        uuid        PRIMARY KEY,
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
    generation             integer     NOT NULL CHECK (generation >= 0),
    seen_at                timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX early_cancellations_registration
    ON ledger.early_cancellations (registration_event_id);
CREATE INDEX early_cancellations_worker_month ON ledger.early_cancellations (nik, period);

-- A month that arrived after its cancellation: never booked; the registration it belongs to
-- sees it cancelled.
CREATE TABLE ledger.cancelled_on_arrival (
    contribution_id        uuid        PRIMARY KEY REFERENCES ledger.early_cancellations,
    schedule_id            uuid        NOT NULL,
    registration_event_id  uuid        NOT NULL,
    seen_at                timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX cancelled_on_arrival_registration
    ON ledger.cancelled_on_arrival (registration_event_id);

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
CREATE TRIGGER early_cancellations_append_only
    BEFORE UPDATE OR DELETE ON ledger.early_cancellations
    FOR EACH ROW EXECUTE FUNCTION ledger.refuse_change();
CREATE TRIGGER early_cancellations_no_truncate BEFORE TRUNCATE ON ledger.early_cancellations
    FOR EACH STATEMENT EXECUTE FUNCTION ledger.refuse_change();
CREATE TRIGGER cancelled_on_arrival_append_only
    BEFORE UPDATE OR DELETE ON ledger.cancelled_on_arrival
    FOR EACH ROW EXECUTE FUNCTION ledger.refuse_change();
CREATE TRIGGER cancelled_on_arrival_no_truncate BEFORE TRUNCATE ON ledger.cancelled_on_arrival
    FOR EACH STATEMENT EXECUTE FUNCTION ledger.refuse_change();

-- ---------------------------------------------------------------------------------------
-- Contributions not booked: holds, duplicates, refusals
-- ---------------------------------------------------------------------------------------

-- Contributions not booked (yet): the allocation had no room (or there is none), or the
-- month waits for the cancellation of its worker-month's earlier generation.
CREATE TABLE ledger.held_contributions (
    contribution_id        uuid        PRIMARY KEY,
    hold_seq               bigint      GENERATED ALWAYS AS IDENTITY UNIQUE,
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
    reason                 text        NOT NULL
        CHECK (reason IN ('budget_exceeded', 'no_allocation', 'awaiting_cancellation')),
    held_at                timestamptz NOT NULL DEFAULT now(),
    generation             integer     NOT NULL DEFAULT 0
        CONSTRAINT held_generation_not_negative CHECK (generation >= 0),
    CONSTRAINT held_components_add_up CHECK (jkk_idr + jkm_idr = amount_idr)
);
CREATE INDEX held_contributions_queue
    ON ledger.held_contributions (programme, funding_source, hold_seq);
CREATE INDEX held_contributions_period ON ledger.held_contributions (period, contribution_id);
CREATE INDEX held_contributions_nik ON ledger.held_contributions (nik);
CREATE INDEX held_contributions_registration ON ledger.held_contributions (registration_event_id);

-- What became of a held contribution: booked once the budget allowed it, cancelled by a
-- deregistration, or not booked because another payer booked the worker's month first.
CREATE TABLE ledger.held_resolutions (
    contribution_id  uuid        PRIMARY KEY REFERENCES ledger.held_contributions (contribution_id),
    outcome          text        NOT NULL CHECK (outcome IN ('booked', 'cancelled', 'duplicate')),
    schedule_id      uuid,
    resolved_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX held_resolutions_schedule ON ledger.held_resolutions (schedule_id);

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
    occupied_by            uuid        NOT NULL REFERENCES ledger.contributions (contribution_id),
    seen_at                timestamptz NOT NULL DEFAULT now(),
    generation             integer     NOT NULL DEFAULT 0
        CONSTRAINT duplicate_generation_not_negative CHECK (generation >= 0)
);
CREATE INDEX duplicate_attempts_registration ON ledger.duplicate_attempts (registration_event_id);

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
CREATE INDEX refused_contributions_registration
    ON ledger.refused_contributions (registration_event_id);

CREATE TRIGGER held_contributions_append_only BEFORE UPDATE OR DELETE ON ledger.held_contributions
    FOR EACH ROW EXECUTE FUNCTION ledger.refuse_change();
CREATE TRIGGER held_contributions_no_truncate BEFORE TRUNCATE ON ledger.held_contributions
    FOR EACH STATEMENT EXECUTE FUNCTION ledger.refuse_change();
CREATE TRIGGER held_resolutions_append_only BEFORE UPDATE OR DELETE ON ledger.held_resolutions
    FOR EACH ROW EXECUTE FUNCTION ledger.refuse_change();
CREATE TRIGGER held_resolutions_no_truncate BEFORE TRUNCATE ON ledger.held_resolutions
    FOR EACH STATEMENT EXECUTE FUNCTION ledger.refuse_change();
CREATE TRIGGER duplicate_attempts_append_only BEFORE UPDATE OR DELETE ON ledger.duplicate_attempts
    FOR EACH ROW EXECUTE FUNCTION ledger.refuse_change();
CREATE TRIGGER duplicate_attempts_no_truncate BEFORE TRUNCATE ON ledger.duplicate_attempts
    FOR EACH STATEMENT EXECUTE FUNCTION ledger.refuse_change();
CREATE TRIGGER refused_contributions_append_only
    BEFORE UPDATE OR DELETE ON ledger.refused_contributions
    FOR EACH ROW EXECUTE FUNCTION ledger.refuse_change();
CREATE TRIGGER refused_contributions_no_truncate BEFORE TRUNCATE ON ledger.refused_contributions
    FOR EACH STATEMENT EXECUTE FUNCTION ledger.refuse_change();

-- ---------------------------------------------------------------------------------------
-- Budget: allocations and their history
-- ---------------------------------------------------------------------------------------

-- Budget ceiling per programme, funding source and fiscal year (a programme file is one
-- scheme and one fiscal year). A contribution that would exceed its allocation is held
-- (not booked); raising the allocation books the held ones in the order they arrived.
-- allocated_idr only ever rises, and only together with a recorded change below; booked_idr
-- (what the allocation committed) moves with each booked batch, only through
-- ledger.commit_budget, and can never exceed allocated_idr.
CREATE TABLE ledger.budget_allocations (
    programme       text        NOT NULL,
    funding_source  text        NOT NULL,
    fiscal_year     integer     NOT NULL CHECK (fiscal_year BETWEEN 2000 AND 2100),
    allocated_idr   bigint      NOT NULL CHECK (allocated_idr >= 0),
    booked_idr      bigint      NOT NULL DEFAULT 0,
    created_at      timestamptz NOT NULL DEFAULT now(),
    changed_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (programme, funding_source, fiscal_year),
    CONSTRAINT budget_allocations_one_per_programme UNIQUE (programme, funding_source),
    CONSTRAINT budget_allocations_ceiling CHECK (booked_idr BETWEEN 0 AND allocated_idr)
);
GRANT UPDATE (allocated_idr) ON ledger.budget_allocations TO iuran_ledger_writer;

-- Append-only history: every allocation ever set, why, by whom, in which transaction.
CREATE TABLE ledger.budget_allocation_changes (
    change_id       bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    programme       text        NOT NULL,
    funding_source  text        NOT NULL,
    fiscal_year     integer     NOT NULL,
    previous_idr    bigint      NOT NULL CHECK (previous_idr >= 0),
    allocated_idr   bigint      NOT NULL CHECK (allocated_idr >= previous_idr),
    source          text        NOT NULL CHECK (source IN ('configuration', 'command')),
    reason          text        NOT NULL CHECK (length(reason) BETWEEN 1 AND 500),
    changed_by      text        NOT NULL CHECK (length(changed_by) BETWEEN 1 AND 100),
    changed_at      timestamptz NOT NULL DEFAULT now(),
    recorded_xact   xid8        NOT NULL DEFAULT pg_current_xact_id()
);
CREATE INDEX budget_allocation_changes_key
    ON ledger.budget_allocation_changes (programme, funding_source, fiscal_year);

-- The allocation row: key fixed, allocated_idr never lowered and changed only with a recorded
-- change in the same transaction. booked_idr is what the allocation committed (months booked
-- and not cancelled, plus credits at BPJS), moved by the booking with each batch; the ceiling
-- is the CHECK on the table.
CREATE FUNCTION ledger.guard_allocation() RETURNS trigger
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        IF (NEW.programme, NEW.funding_source, NEW.fiscal_year, NEW.created_at)
           IS DISTINCT FROM (OLD.programme, OLD.funding_source, OLD.fiscal_year, OLD.created_at) THEN
            RAISE EXCEPTION 'the key of a budget allocation never changes'
                USING ERRCODE = 'insufficient_privilege';
        END IF;
        IF NEW.allocated_idr < OLD.allocated_idr THEN
            RAISE EXCEPTION 'a budget allocation is never lowered (% -> %)',
                OLD.allocated_idr, NEW.allocated_idr USING ERRCODE = 'insufficient_privilege';
        END IF;
        IF NEW.allocated_idr = OLD.allocated_idr THEN
            RETURN NEW;
        END IF;
    END IF;
    IF NOT EXISTS (
        SELECT 1 FROM ledger.budget_allocation_changes h
         WHERE h.programme = NEW.programme AND h.funding_source = NEW.funding_source
           AND h.fiscal_year = NEW.fiscal_year AND h.allocated_idr = NEW.allocated_idr
           AND h.recorded_xact = pg_current_xact_id()) THEN
        RAISE EXCEPTION 'record the change in ledger.budget_allocation_changes first'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    NEW.changed_at := now();
    RETURN NEW;
END;
$$;

CREATE TRIGGER budget_allocations_guard BEFORE INSERT OR UPDATE ON ledger.budget_allocations
    FOR EACH ROW EXECUTE FUNCTION ledger.guard_allocation();
CREATE TRIGGER budget_allocations_no_delete BEFORE DELETE ON ledger.budget_allocations
    FOR EACH ROW EXECUTE FUNCTION ledger.refuse_change();
CREATE TRIGGER budget_allocations_no_truncate BEFORE TRUNCATE ON ledger.budget_allocations
    FOR EACH STATEMENT EXECUTE FUNCTION ledger.refuse_change();
CREATE TRIGGER budget_allocation_changes_append_only
    BEFORE UPDATE OR DELETE ON ledger.budget_allocation_changes
    FOR EACH ROW EXECUTE FUNCTION ledger.refuse_change();
CREATE TRIGGER budget_allocation_changes_no_truncate
    BEFORE TRUNCATE ON ledger.budget_allocation_changes
    FOR EACH STATEMENT EXECUTE FUNCTION ledger.refuse_change();

-- ---------------------------------------------------------------------------------------
-- Programme configuration as the ledger recorded it
-- ---------------------------------------------------------------------------------------

-- Each programme's billing mode, recorded once: monthly (one bill per month, lines of that
-- month) or prepaid (N months of each worker on one bill, issued and due at enrolment,
-- charged to the fiscal year of that day).
CREATE TABLE ledger.programme_billing (
    programme    text        PRIMARY KEY,
    mode         text        NOT NULL CHECK (mode IN ('monthly', 'prepaid')),
    months       integer     NOT NULL CHECK (months IN (1, 3, 6, 12)),
    recorded_at  timestamptz NOT NULL DEFAULT now()
);

-- A programme's premiums as dated rates, each from its month on, recorded from the programme
-- configuration whenever it changes (one rate set per recording; the latest set is the one in
-- force). A contribution is judged by the rate of its month: the latest rate of the current
-- set whose effective_from is not after the contribution's period.
CREATE TABLE ledger.premium_rates (
    rate_id         bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    rate_set        uuid        NOT NULL,
    programme       text        NOT NULL,
    effective_from  text        NOT NULL CHECK (effective_from ~ '^[0-9]{4}-(0[1-9]|1[0-2])$'),
    monthly_idr     bigint      NOT NULL CHECK (monthly_idr > 0),
    jkk_idr         bigint      NOT NULL CHECK (jkk_idr >= 0),
    jkm_idr         bigint      NOT NULL CHECK (jkm_idr >= 0),
    recorded_at     timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT premium_rates_add_up CHECK (jkk_idr + jkm_idr = monthly_idr),
    CONSTRAINT premium_rates_one_per_month UNIQUE (rate_set, programme, effective_from)
);
CREATE INDEX premium_rates_latest ON ledger.premium_rates (programme, rate_id);
CREATE TRIGGER premium_rates_append_only BEFORE UPDATE OR DELETE ON ledger.premium_rates
    FOR EACH ROW EXECUTE FUNCTION ledger.refuse_change();
CREATE TRIGGER premium_rates_no_truncate BEFORE TRUNCATE ON ledger.premium_rates
    FOR EACH STATEMENT EXECUTE FUNCTION ledger.refuse_change();

CREATE TRIGGER programme_billing_append_only BEFORE UPDATE OR DELETE ON ledger.programme_billing
    FOR EACH ROW EXECUTE FUNCTION ledger.refuse_change();
CREATE TRIGGER programme_billing_no_truncate BEFORE TRUNCATE ON ledger.programme_billing
    FOR EACH STATEMENT EXECUTE FUNCTION ledger.refuse_change();

-- ---------------------------------------------------------------------------------------
-- Bills and payments
-- ---------------------------------------------------------------------------------------
-- Bills ("tagihan") to BPJS, payments from iuran.payments.v1, discrepancies for a person to
-- resolve. A bill is frozen once issued: its header and lines are append-only, and lines
-- can only be added by the transaction that issued the bill, adding up to its header.
-- Every payment received is in the journal at once: a receipt transfer moves its whole
-- amount from the cash of the funding source to the suspense account
-- (asset:unapplied:<programme>); settling a bill moves it on, line by line, to the payable.
-- What matches no bill stays in suspense until a person applies it to a bill, refunds it
-- or carries it over (a discrepancy resolution that moves the money).

CREATE TABLE ledger.bills (
    bill_id        uuid        PRIMARY KEY,
    programme      text        NOT NULL,
    period         text        NOT NULL CHECK (period ~ '^[0-9]{4}-(0[1-9]|1[0-2])$'),
    sequence       integer     NOT NULL CHECK (sequence >= 1),
    due_date       date        NOT NULL,
    lines          integer     NOT NULL CHECK (lines > 0),
    amount_idr     bigint      NOT NULL CHECK (amount_idr > 0),
    issued_by      text        NOT NULL CHECK (length(issued_by) BETWEEN 1 AND 100),
    issued_at      timestamptz NOT NULL DEFAULT now(),
    issued_xact    xid8        NOT NULL DEFAULT pg_current_xact_id(),
    billing        text        NOT NULL DEFAULT 'monthly'
        CONSTRAINT bills_billing_mode CHECK (billing IN ('monthly', 'prepaid')),
    fiscal_year    integer
        CONSTRAINT bills_fiscal_year CHECK (fiscal_year BETWEEN 2000 AND 2100),
    CONSTRAINT bills_one_sequence UNIQUE (programme, period, sequence)
);

-- A contribution is on one bill at most.
CREATE TABLE ledger.bill_lines (
    contribution_id  uuid   PRIMARY KEY REFERENCES ledger.contributions (contribution_id),
    bill_id          uuid   NOT NULL REFERENCES ledger.bills (bill_id),
    amount_idr       bigint NOT NULL CHECK (amount_idr > 0)
);
CREATE INDEX bill_lines_bill ON ledger.bill_lines (bill_id);

-- Every payment confirmation received, once (payment_id), whatever its outcome.
CREATE TABLE ledger.payments (
    payment_id   uuid        PRIMARY KEY,
    programme    text        NOT NULL,
    period       text        NOT NULL,
    amount_idr   bigint      NOT NULL CHECK (amount_idr >= 0),
    reference    text        NOT NULL,
    paid_at      timestamptz NOT NULL,
    outcome      text        NOT NULL CHECK (outcome IN ('settled', 'discrepancy')),
    received_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX payments_reference ON ledger.payments (reference);
CREATE INDEX payments_programme_period ON ledger.payments (programme, period);

ALTER TABLE ledger.transfers
    ADD FOREIGN KEY (payment_id) REFERENCES ledger.payments (payment_id);

-- A bill is settled by one payment; its lines get settlement transfers.
CREATE TABLE ledger.bill_settlements (
    bill_id     uuid        PRIMARY KEY REFERENCES ledger.bills (bill_id),
    payment_id  uuid        NOT NULL REFERENCES ledger.payments (payment_id),
    settled_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX bill_settlements_payment ON ledger.bill_settlements (payment_id);

-- A payment that was not applied: partial, excess, for no issued bill, for a bill already
-- paid, or with a reference already used. Never applied silently: a person resolves it.
CREATE TABLE ledger.discrepancies (
    discrepancy_id  uuid        PRIMARY KEY,
    payment_id      uuid        NOT NULL UNIQUE REFERENCES ledger.payments (payment_id),
    programme       text        NOT NULL,
    period          text        NOT NULL,
    kind            text        NOT NULL CHECK (kind IN ('partial', 'excess', 'unknown_bill',
                                                         'already_paid', 'duplicate_reference')),
    expected_idr    bigint      NOT NULL CHECK (expected_idr >= 0),
    paid_idr        bigint      NOT NULL CHECK (paid_idr >= 0),
    reference       text        NOT NULL,
    detail          text        NOT NULL,
    recorded_at     timestamptz NOT NULL DEFAULT now()
);

-- How a person disposed of the money of a discrepancy (all of it, once): applied to a bill,
-- refunded, carried over; or 'topped_up' when a later payment completed the bill with it.
-- A resolution without an action moved no money.
CREATE TABLE ledger.discrepancy_resolutions (
    discrepancy_id    uuid        PRIMARY KEY REFERENCES ledger.discrepancies (discrepancy_id),
    resolution        text        NOT NULL CHECK (length(resolution) BETWEEN 1 AND 1000),
    resolved_by       text        NOT NULL CHECK (length(resolved_by) BETWEEN 1 AND 100),
    resolved_at       timestamptz NOT NULL DEFAULT now(),
    action            text        CONSTRAINT discrepancy_resolutions_action
        CHECK (action IN ('applied', 'refund', 'carry_over', 'topped_up', 'voided')),
    bill_id           uuid        REFERENCES ledger.bills (bill_id),
    applied_idr       bigint      NOT NULL DEFAULT 0 CHECK (applied_idr >= 0),
    refunded_idr      bigint      NOT NULL DEFAULT 0 CHECK (refunded_idr >= 0),
    carried_over_idr  bigint      NOT NULL DEFAULT 0 CHECK (carried_over_idr >= 0)
);

-- A cancellation that came too late: the month is already on an issued bill or paid.
CREATE TABLE ledger.cancellations_refused (
    contribution_id        uuid        NOT NULL REFERENCES ledger.contributions (contribution_id),
    schedule_id            uuid        NOT NULL,
    registration_event_id  uuid        NOT NULL,
    reason                 text        NOT NULL CHECK (reason IN ('billed', 'paid')),
    seen_at                timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (contribution_id, schedule_id)
);
CREATE INDEX cancellations_refused_registration
    ON ledger.cancellations_refused (registration_event_id);

-- Lines belong to a bill issued in this very transaction, match an active contribution of
-- the bill's programme (and month, for a monthly bill; any month of the programme for a
-- prepaid one) with its amount, and add up to the header.
CREATE FUNCTION ledger.check_bill_lines() RETURNS trigger
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    bad text;
BEGIN
    EXECUTE $sql$
        SELECT l.bill_id::text
          FROM new_lines l JOIN ledger.bills b USING (bill_id)
         WHERE b.issued_xact <> pg_current_xact_id()
         LIMIT 1
    $sql$ INTO bad;
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION 'bill % is issued and frozen: a later contribution goes to a supplementary bill', bad
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    EXECUTE $sql$
        SELECT l.contribution_id::text
          FROM new_lines l
          JOIN ledger.bills b USING (bill_id)
          JOIN ledger.contributions c ON c.contribution_id = l.contribution_id
         WHERE c.programme <> b.programme OR c.amount_idr <> l.amount_idr
            OR (b.billing = 'monthly' AND c.period <> b.period)
            OR EXISTS (SELECT 1 FROM ledger.cancellations x
                        WHERE x.contribution_id = c.contribution_id)
         LIMIT 1
    $sql$ INTO bad;
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION 'bill line % does not match an active contribution of the bill''s programme (and month, for a monthly bill)', bad
            USING ERRCODE = 'check_violation';
    END IF;
    EXECUTE $sql$
        SELECT b.bill_id::text
          FROM ledger.bills b
         WHERE b.bill_id IN (SELECT bill_id FROM new_lines)
           AND (b.lines, b.amount_idr) <> (SELECT count(*)::integer, sum(l.amount_idr)::bigint
                                             FROM ledger.bill_lines l
                                            WHERE l.bill_id = b.bill_id)
         LIMIT 1
    $sql$ INTO bad;
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION 'the lines of bill % do not add up to its header', bad
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER bill_lines_check AFTER INSERT ON ledger.bill_lines
    REFERENCING NEW TABLE AS new_lines
    FOR EACH STATEMENT EXECUTE FUNCTION ledger.check_bill_lines();

CREATE TRIGGER bills_append_only BEFORE UPDATE OR DELETE ON ledger.bills
    FOR EACH ROW EXECUTE FUNCTION ledger.refuse_change();
CREATE TRIGGER bills_no_truncate BEFORE TRUNCATE ON ledger.bills
    FOR EACH STATEMENT EXECUTE FUNCTION ledger.refuse_change();
CREATE TRIGGER bill_lines_append_only BEFORE UPDATE OR DELETE ON ledger.bill_lines
    FOR EACH ROW EXECUTE FUNCTION ledger.refuse_change();
CREATE TRIGGER bill_lines_no_truncate BEFORE TRUNCATE ON ledger.bill_lines
    FOR EACH STATEMENT EXECUTE FUNCTION ledger.refuse_change();
CREATE TRIGGER payments_append_only BEFORE UPDATE OR DELETE ON ledger.payments
    FOR EACH ROW EXECUTE FUNCTION ledger.refuse_change();
CREATE TRIGGER payments_no_truncate BEFORE TRUNCATE ON ledger.payments
    FOR EACH STATEMENT EXECUTE FUNCTION ledger.refuse_change();
CREATE TRIGGER bill_settlements_append_only BEFORE UPDATE OR DELETE ON ledger.bill_settlements
    FOR EACH ROW EXECUTE FUNCTION ledger.refuse_change();
CREATE TRIGGER bill_settlements_no_truncate BEFORE TRUNCATE ON ledger.bill_settlements
    FOR EACH STATEMENT EXECUTE FUNCTION ledger.refuse_change();
CREATE TRIGGER discrepancies_append_only BEFORE UPDATE OR DELETE ON ledger.discrepancies
    FOR EACH ROW EXECUTE FUNCTION ledger.refuse_change();
CREATE TRIGGER discrepancies_no_truncate BEFORE TRUNCATE ON ledger.discrepancies
    FOR EACH STATEMENT EXECUTE FUNCTION ledger.refuse_change();
CREATE TRIGGER discrepancy_resolutions_append_only
    BEFORE UPDATE OR DELETE ON ledger.discrepancy_resolutions
    FOR EACH ROW EXECUTE FUNCTION ledger.refuse_change();
CREATE TRIGGER discrepancy_resolutions_no_truncate BEFORE TRUNCATE ON ledger.discrepancy_resolutions
    FOR EACH STATEMENT EXECUTE FUNCTION ledger.refuse_change();
CREATE TRIGGER cancellations_refused_append_only
    BEFORE UPDATE OR DELETE ON ledger.cancellations_refused
    FOR EACH ROW EXECUTE FUNCTION ledger.refuse_change();
CREATE TRIGGER cancellations_refused_no_truncate BEFORE TRUNCATE ON ledger.cancellations_refused
    FOR EACH STATEMENT EXECUTE FUNCTION ledger.refuse_change();

-- A receipt voided by finance: who, why, and how much went back to cash. One per payment;
-- append-only like every record of money.
CREATE TABLE ledger.payment_voids (
    payment_id  uuid        PRIMARY KEY REFERENCES ledger.payments (payment_id),
    amount_idr  bigint      NOT NULL CHECK (amount_idr >= 0),
    reason      text        NOT NULL CHECK (length(reason) BETWEEN 1 AND 1000),
    voided_by   text        NOT NULL CHECK (length(voided_by) BETWEEN 1 AND 100),
    voided_at   timestamptz NOT NULL DEFAULT now()
);
CREATE TRIGGER payment_voids_append_only BEFORE UPDATE OR DELETE ON ledger.payment_voids
    FOR EACH ROW EXECUTE FUNCTION ledger.refuse_change();
CREATE TRIGGER payment_voids_no_truncate BEFORE TRUNCATE ON ledger.payment_voids
    FOR EACH STATEMENT EXECUTE FUNCTION ledger.refuse_change();

-- Money BPJS returned, as the bank statement shows it (one row per statement line).
CREATE TABLE ledger.refunds_received (
    refund_id       uuid        PRIMARY KEY,
    programme       text        NOT NULL,
    amount_idr      bigint      NOT NULL CHECK (amount_idr > 0),
    bank_reference  text        NOT NULL UNIQUE CHECK (length(bank_reference) BETWEEN 1 AND 200),
    received_on     date        NOT NULL,
    recorded_by     text        NOT NULL CHECK (length(recorded_by) BETWEEN 1 AND 100),
    recorded_at     timestamptz NOT NULL DEFAULT now()
);
CREATE TRIGGER refunds_received_append_only BEFORE UPDATE OR DELETE ON ledger.refunds_received
    FOR EACH ROW EXECUTE FUNCTION ledger.refuse_change();
CREATE TRIGGER refunds_received_no_truncate BEFORE TRUNCATE ON ledger.refunds_received
    FOR EACH STATEMENT EXECUTE FUNCTION ledger.refuse_change();

-- ---------------------------------------------------------------------------------------
-- Credits at BPJS
-- ---------------------------------------------------------------------------------------

-- A month already on a bill (or paid) that is deregistered is cancelled with a credit: the
-- premium expense is reversed against asset:bpjs_credit:<programme> (carried over at BPJS)
-- and recorded here.
CREATE TABLE ledger.credits (
    contribution_id        uuid        PRIMARY KEY REFERENCES ledger.cancellations (contribution_id),
    bill_id                uuid        NOT NULL REFERENCES ledger.bills (bill_id),
    programme              text        NOT NULL,
    amount_idr             bigint      NOT NULL CHECK (amount_idr > 0),
    recorded_at            timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX credits_programme ON ledger.credits (programme);

-- A credit refunded to the treasury instead of carried over (once): the refund moves it to
-- asset:refund_due:<programme>.
CREATE TABLE ledger.credit_refunds (
    contribution_id  uuid        PRIMARY KEY REFERENCES ledger.credits (contribution_id),
    reason           text        NOT NULL CHECK (length(reason) BETWEEN 1 AND 1000),
    refunded_by      text        NOT NULL CHECK (length(refunded_by) BETWEEN 1 AND 100),
    refunded_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TRIGGER credits_append_only BEFORE UPDATE OR DELETE ON ledger.credits
    FOR EACH ROW EXECUTE FUNCTION ledger.refuse_change();
CREATE TRIGGER credits_no_truncate BEFORE TRUNCATE ON ledger.credits
    FOR EACH STATEMENT EXECUTE FUNCTION ledger.refuse_change();
CREATE TRIGGER credit_refunds_append_only BEFORE UPDATE OR DELETE ON ledger.credit_refunds
    FOR EACH ROW EXECUTE FUNCTION ledger.refuse_change();
CREATE TRIGGER credit_refunds_no_truncate BEFORE TRUNCATE ON ledger.credit_refunds
    FOR EACH STATEMENT EXECUTE FUNCTION ledger.refuse_change();

-- ---------------------------------------------------------------------------------------
-- Dead letters
-- ---------------------------------------------------------------------------------------

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

CREATE TRIGGER dead_letters_append_only BEFORE UPDATE OR DELETE ON ledger.dead_letters
    FOR EACH ROW EXECUTE FUNCTION ledger.refuse_change();
CREATE TRIGGER dead_letters_no_truncate BEFORE TRUNCATE ON ledger.dead_letters
    FOR EACH STATEMENT EXECUTE FUNCTION ledger.refuse_change();

-- ---------------------------------------------------------------------------------------
-- The outbox: what the ledger committed, for iuran.ledger.v1
-- ---------------------------------------------------------------------------------------
-- A booking (services/ledger/outbox.py, called by the booking and by the settlement of
-- bills) writes, in its own transaction, one row per programme describing what it booked,
-- held, cancelled, credited and settled: an iuran.ledger.v1 event, exactly as it is sent.
-- The ledger process relays the rows to Kafka (services/ledger/relay.py): it takes the
-- unpublished rows in id order (FOR UPDATE SKIP LOCKED, so two ledger processes never send
-- one row both), awaits their delivery, then sets published_at. Ids come from a sequence
-- and commit out of order, so the relay never keeps a position: it selects the rows not
-- published yet. A crash between the send and the mark sends a row again; consumers apply
-- each outbox_id once. Only published_at ever changes (once); nothing is deleted.
CREATE SEQUENCE ledger.outbox_ids;
CREATE TABLE ledger.outbox (
    outbox_id     bigint      PRIMARY KEY DEFAULT nextval('ledger.outbox_ids'),
    programme     text        NOT NULL,
    event         text        NOT NULL,  -- the iuran.ledger.v1 event (JSON) as sent
    recorded_at   timestamptz NOT NULL DEFAULT now(),
    published_at  timestamptz            -- delivered to the broker
);
ALTER SEQUENCE ledger.outbox_ids OWNED BY ledger.outbox.outbox_id;
-- The relay's queue: only the rows still to send are in it.
CREATE INDEX outbox_unpublished ON ledger.outbox (outbox_id) WHERE published_at IS NULL;
GRANT UPDATE (published_at) ON ledger.outbox TO iuran_ledger_writer;

CREATE TRIGGER outbox_published_once BEFORE UPDATE ON ledger.outbox
    FOR EACH ROW WHEN (OLD.published_at IS NOT NULL
                       OR (NEW.outbox_id, NEW.programme, NEW.event, NEW.recorded_at)
                          IS DISTINCT FROM (OLD.outbox_id, OLD.programme, OLD.event,
                                            OLD.recorded_at))
    EXECUTE FUNCTION ledger.refuse_change();
CREATE TRIGGER outbox_no_delete BEFORE DELETE ON ledger.outbox
    FOR EACH ROW EXECUTE FUNCTION ledger.refuse_change();
CREATE TRIGGER outbox_no_truncate BEFORE TRUNCATE ON ledger.outbox
    FOR EACH STATEMENT EXECUTE FUNCTION ledger.refuse_change();

-- ---------------------------------------------------------------------------------------
-- Coverage: the projector's running totals, folded from iuran.ledger.v1
-- ---------------------------------------------------------------------------------------
-- Not the system of record: the coverage projector (services/projector) folds the ledger's
-- events into these tables (services/projector/fold.py), one transaction per batch of
-- events, and the projector and the read API compute every coverage figure from them
-- (services/ledger/coverage.py). An event's outbox_id is recorded in coverage.applied in
-- the transaction that applies it: a replay or a second delivery changes nothing.
--   booked    +1 per month booked, -1 per booked month cancelled (reversed or credited);
--   held      +1 per month held, -1 when a hold is resolved (booked, cancelled while held,
--             or a duplicate).
-- A refused duplicate is never booked nor held, so it never appears here.
CREATE SCHEMA coverage;
REVOKE ALL ON SCHEMA coverage FROM PUBLIC;
GRANT USAGE ON SCHEMA coverage TO iuran_ledger_writer;
ALTER DEFAULT PRIVILEGES IN SCHEMA coverage
    GRANT SELECT, INSERT, UPDATE ON TABLES TO iuran_ledger_writer;

-- The events applied (their outbox_id), in the transaction that applied them.
CREATE TABLE coverage.applied (
    outbox_id   bigint      PRIMARY KEY,
    applied_at  timestamptz NOT NULL DEFAULT now()
);

-- Per programme, month and (OPD, category, kecamatan). One active payer per worker-month
-- across all programmes makes booked_months the number of distinct workers covered in that
-- month, and their sum over programmes the number of distinct workers covered in that month
-- by any programme. `changes` only ever grows: with coverage.paid's settled_bills it is the
-- change marker a reader polls (it moves in the transaction that applies an event).
CREATE TABLE coverage.months (
    programme      text   NOT NULL,
    period         text   NOT NULL,
    opd_code       text   NOT NULL,
    category       text   NOT NULL,
    kecamatan      text   NOT NULL,
    booked_months  bigint NOT NULL DEFAULT 0,
    booked_idr     bigint NOT NULL DEFAULT 0,
    held_months    bigint NOT NULL DEFAULT 0,
    held_idr       bigint NOT NULL DEFAULT 0,
    changes        bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (programme, period, opd_code, category, kecamatan)
);

-- Per programme, group ('total' | 'by_opd' | 'by_category' | 'by_kecamatan', and its key)
-- and worker: that worker's months in the group. Four rows per worker and programme; a
-- reader never scans it. The NIK is kept as a number (16 digits).
CREATE TABLE coverage.workers (
    programme      text   NOT NULL,
    dimension      text   NOT NULL,
    key            text   NOT NULL,
    nik            bigint NOT NULL,
    booked_months  bigint NOT NULL DEFAULT 0,
    held_months    bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (programme, dimension, key, nik)
);

-- Per programme and group, the distinct workers with a booked month and with a held
-- month, and the months and rupiah of each. A worker is counted when its months in the
-- group go from 0 to more, uncounted when they drop back to 0, so the distinct counts are
-- exact without a reader ever counting distinct NIKs: a read costs the same with 3,000 or
-- 3,000,000 contributions.
CREATE TABLE coverage.groups (
    programme                      text   NOT NULL,
    dimension                      text   NOT NULL
        CHECK (dimension IN ('total', 'by_opd', 'by_category', 'by_kecamatan')),
    key                            text   NOT NULL,
    active_workers                 bigint NOT NULL DEFAULT 0,
    contributions_booked           bigint NOT NULL DEFAULT 0,
    booked_idr                     bigint NOT NULL DEFAULT 0,
    awaiting_budget_workers        bigint NOT NULL DEFAULT 0,
    awaiting_budget_contributions  bigint NOT NULL DEFAULT 0,
    awaiting_budget_idr            bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (programme, dimension, key)
);

-- What BPJS was paid per programme: the amounts of its settled bills.
CREATE TABLE coverage.paid (
    programme      text   PRIMARY KEY,
    paid_idr       bigint NOT NULL DEFAULT 0,
    settled_bills  bigint NOT NULL DEFAULT 0
);

-- No function of the ledger's triggers is callable by PUBLIC.
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA ledger FROM PUBLIC;

-- ---------------------------------------------------------------------------------------
-- Registry: the validator's enrolment state and its decisions
-- ---------------------------------------------------------------------------------------
-- The durable record of each registration event (REGISTRY.md), written by the validator in
-- one transaction per batch, before it sends the batch's schedules and rejections, so the
-- system's memory of every enrolment never depends on the broker (the embedded broker is in
-- memory) or on the publisher's partitioner.

-- The validator's per-NIK enrolment state: a typed, versioned document. `state` is
-- services.domain.enrolment.WorkerState as JSON; `version` is its layout version (read
-- through enrolment.read_state, which upgrades older layouts on purpose). A snapshot:
-- upserted.
CREATE TABLE registry.worker_state (
    nik        text PRIMARY KEY,
    version    integer NOT NULL,
    state      jsonb NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
GRANT UPDATE (version, state, updated_at) ON registry.worker_state TO iuran_ledger_writer;

-- One row per registration event the validator decided (events that could not be decoded
-- have no event id and go to the rejected topic only). Append-only: no UPDATE is granted.
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

-- ---------------------------------------------------------------------------------------
-- Gateway: submissions of the registration API (POST /v1/registrations)
-- ---------------------------------------------------------------------------------------
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
GRANT UPDATE (published_at) ON registry.submission_rows TO iuran_ledger_writer;

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
REVOKE ALL ON FUNCTION registry.refuse_submission_change() FROM PUBLIC;

CREATE TRIGGER submissions_append_only BEFORE UPDATE OR DELETE ON registry.submissions
    FOR EACH ROW EXECUTE FUNCTION registry.refuse_submission_change();
CREATE TRIGGER submission_rows_append_only BEFORE UPDATE OR DELETE ON registry.submission_rows
    FOR EACH ROW EXECUTE FUNCTION registry.refuse_submission_change();
