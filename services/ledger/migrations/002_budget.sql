-- Budget ceiling per programme, funding source and fiscal year. A contribution that would
-- exceed its allocation is held (not booked); raising the allocation books the held ones
-- in the order they arrived. The database enforces the ceiling itself: every accrual or
-- reversal moves ledger.budget_allocations.booked_idr, which can never exceed allocated_idr.

-- One row per programme and funding source (a programme file is one scheme and one fiscal
-- year). allocated_idr only ever rises, and only together with a recorded change below;
-- booked_idr is maintained by the journal (trigger on ledger.transfers), never by hand.
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

-- Contributions not booked because the allocation had no room (or there is none).
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
    reason                 text        NOT NULL CHECK (reason IN ('budget_exceeded', 'no_allocation')),
    held_at                timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT held_components_add_up CHECK (jkk_idr + jkm_idr = amount_idr)
);
CREATE INDEX held_contributions_queue
    ON ledger.held_contributions (programme, funding_source, hold_seq);
CREATE INDEX held_contributions_period ON ledger.held_contributions (period, contribution_id);
CREATE INDEX held_contributions_nik ON ledger.held_contributions (nik);

-- What became of a held contribution: booked once the budget allowed it, cancelled by a
-- deregistration, or not booked because another payer booked the worker's month first.
CREATE TABLE ledger.held_resolutions (
    contribution_id  uuid        PRIMARY KEY REFERENCES ledger.held_contributions (contribution_id),
    outcome          text        NOT NULL CHECK (outcome IN ('booked', 'cancelled', 'duplicate')),
    schedule_id      uuid,
    resolved_at      timestamptz NOT NULL DEFAULT now()
);

-- Keyset paging and per-worker queries on the booked contributions.
CREATE INDEX contributions_period_id ON ledger.contributions (period, contribution_id);
CREATE INDEX contributions_nik ON ledger.contributions (nik);

-- One accrual, one reversal and one settlement per contribution, whatever the transfer id.
CREATE UNIQUE INDEX transfers_one_accrual ON ledger.transfers (contribution_id)
    WHERE kind = 'accrual';
CREATE UNIQUE INDEX transfers_one_reversal ON ledger.transfers (contribution_id)
    WHERE kind = 'reversal';
CREATE UNIQUE INDEX transfers_one_settlement ON ledger.transfers (contribution_id)
    WHERE kind = 'settlement';

-- booked_idr moves with the journal: accruals add, reversals subtract. SECURITY DEFINER so
-- that a writer role needs no UPDATE privilege on booked_idr. An accrual for a programme
-- without an allocation, or beyond it, aborts the whole statement.
CREATE FUNCTION ledger.track_budget() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    unallocated text;
BEGIN
    WITH moves AS (
        SELECT c.programme, c.funding_source,
               sum(CASE t.kind WHEN 'accrual' THEN t.amount_idr ELSE -t.amount_idr END) AS delta
          FROM new_transfers t
          JOIN ledger.contributions c ON c.contribution_id = t.contribution_id
         WHERE t.kind IN ('accrual', 'reversal')
         GROUP BY c.programme, c.funding_source
    ), updated AS (
        UPDATE ledger.budget_allocations a
           SET booked_idr = a.booked_idr + m.delta
          FROM moves m
         WHERE a.programme = m.programme AND a.funding_source = m.funding_source
        RETURNING a.programme, a.funding_source
    )
    SELECT m.programme INTO unallocated
      FROM moves m
     WHERE NOT EXISTS (SELECT 1 FROM updated u
                        WHERE u.programme = m.programme AND u.funding_source = m.funding_source)
     LIMIT 1;
    IF unallocated IS NOT NULL THEN
        RAISE EXCEPTION 'no budget allocation for programme %', unallocated
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER transfers_track_budget AFTER INSERT ON ledger.transfers
    REFERENCING NEW TABLE AS new_transfers
    FOR EACH STATEMENT EXECUTE FUNCTION ledger.track_budget();

-- The allocation row: key fixed, never lowered, changed only with a recorded change in the
-- same transaction, booked_idr only through the journal trigger above.
CREATE FUNCTION ledger.guard_allocation() RETURNS trigger
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        IF (NEW.programme, NEW.funding_source, NEW.fiscal_year, NEW.created_at)
           IS DISTINCT FROM (OLD.programme, OLD.funding_source, OLD.fiscal_year, OLD.created_at) THEN
            RAISE EXCEPTION 'the key of a budget allocation never changes'
                USING ERRCODE = 'insufficient_privilege';
        END IF;
        IF NEW.booked_idr <> OLD.booked_idr AND pg_trigger_depth() < 2 THEN
            RAISE EXCEPTION 'booked_idr follows the journal and cannot be set by hand'
                USING ERRCODE = 'insufficient_privilege';
        END IF;
        IF NEW.allocated_idr < OLD.allocated_idr THEN
            RAISE EXCEPTION 'a budget allocation is never lowered (% -> %)',
                OLD.allocated_idr, NEW.allocated_idr USING ERRCODE = 'insufficient_privilege';
        END IF;
        IF NEW.allocated_idr = OLD.allocated_idr THEN
            RETURN NEW;
        END IF;
    ELSE
        IF NEW.booked_idr <> (
            SELECT coalesce(sum(c.amount_idr), 0) FROM ledger.contributions c
             WHERE c.programme = NEW.programme AND c.funding_source = NEW.funding_source
               AND NOT EXISTS (SELECT 1 FROM ledger.cancellations x
                                WHERE x.contribution_id = c.contribution_id)) THEN
            RAISE EXCEPTION 'a new allocation must start with what is already booked'
                USING ERRCODE = 'check_violation';
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
