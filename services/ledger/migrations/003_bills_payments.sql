-- Monthly bills ("tagihan") to BPJS, payments from iuran.payments.v1, discrepancies for a
-- person to resolve. A bill is frozen once issued: its header and lines are append-only and
-- lines can only be added by the transaction that issued the bill, adding up to its header.

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
    CONSTRAINT bills_one_sequence UNIQUE (programme, period, sequence)
);

-- A contribution is on one bill at most.
CREATE TABLE ledger.bill_lines (
    contribution_id  uuid   PRIMARY KEY REFERENCES ledger.contributions (contribution_id),
    bill_id          uuid   NOT NULL REFERENCES ledger.bills (bill_id),
    amount_idr       bigint NOT NULL CHECK (amount_idr > 0)
);
CREATE INDEX bill_lines_bill ON ledger.bill_lines (bill_id);

-- Lines belong to a bill issued in this very transaction, match their contribution (same
-- programme, period, amount, not cancelled) and add up to the header.
CREATE FUNCTION ledger.check_bill_lines() RETURNS trigger
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    bad text;
BEGIN
    SELECT l.bill_id::text INTO bad
      FROM new_lines l JOIN ledger.bills b USING (bill_id)
     WHERE b.issued_xact <> pg_current_xact_id()
     LIMIT 1;
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION 'bill % is issued and frozen: a later contribution goes to a supplementary bill', bad
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    SELECT l.contribution_id::text INTO bad
      FROM new_lines l
      JOIN ledger.bills b USING (bill_id)
      JOIN ledger.contributions c ON c.contribution_id = l.contribution_id
     WHERE c.programme <> b.programme OR c.period <> b.period OR c.amount_idr <> l.amount_idr
        OR EXISTS (SELECT 1 FROM ledger.cancellations x WHERE x.contribution_id = c.contribution_id)
     LIMIT 1;
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION 'bill line % does not match an active contribution of the bill''s programme and period', bad
            USING ERRCODE = 'check_violation';
    END IF;
    SELECT b.bill_id::text INTO bad
      FROM ledger.bills b
     WHERE b.bill_id IN (SELECT bill_id FROM new_lines)
       AND (b.lines, b.amount_idr) <> (SELECT count(*)::integer, sum(l.amount_idr)::bigint
                                         FROM ledger.bill_lines l WHERE l.bill_id = b.bill_id)
     LIMIT 1;
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

CREATE TABLE ledger.discrepancy_resolutions (
    discrepancy_id  uuid        PRIMARY KEY REFERENCES ledger.discrepancies (discrepancy_id),
    resolution      text        NOT NULL CHECK (length(resolution) BETWEEN 1 AND 1000),
    resolved_by     text        NOT NULL CHECK (length(resolved_by) BETWEEN 1 AND 100),
    resolved_at     timestamptz NOT NULL DEFAULT now()
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
