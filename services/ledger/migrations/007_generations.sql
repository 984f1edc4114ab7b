-- Generations of a worker-month. A month can be booked, cancelled (deregistration) and
-- booked again by a later registration of the same NIK, in this or another programme. Each
-- booking after a cancellation is a new generation (0, 1, 2, ...) with a contribution id of
-- its own; generation 0 keeps the id and the meaning every contribution had before.
--
-- One worker, one active payer per month still holds, enforced here:
--   * unique (nik, period, generation): each generation of a worker-month is booked once;
--   * a row of generation g >= 1 is booked only when every row of its worker-month is
--     cancelled, none has generation g or later, and an earlier generation is closed: booked
--     and cancelled, or held and cancelled while held (ledger.check_generation below);
--   * a contribution whose hold was cancelled (or found a duplicate) is never booked.
-- Generation 0 needs no more than the unique index: a generation >= 1 row exists only when
-- an earlier generation was closed, so a generation 0 row either exists already (the unique
-- index refuses another) or was a hold cancelled while held (refused by the last rule).
-- Rows of generation >= 1 take a transaction-level advisory lock on their worker-month (one
-- of 1024 buckets) before the check, so two ledger processes booking the same month (rows
-- of one NIK share a Kafka partition, but the database does not rely on it) run one after
-- the other and the second sees the first's row.

ALTER TABLE ledger.contributions
    ADD COLUMN generation integer NOT NULL DEFAULT 0
        CONSTRAINT contributions_generation_not_negative CHECK (generation >= 0);
ALTER TABLE ledger.contributions DROP CONSTRAINT contributions_one_payer_per_month;
ALTER TABLE ledger.contributions
    ADD CONSTRAINT contributions_one_booking_per_generation UNIQUE (nik, period, generation);

ALTER TABLE ledger.held_contributions
    ADD COLUMN generation integer NOT NULL DEFAULT 0
        CONSTRAINT held_generation_not_negative CHECK (generation >= 0);
ALTER TABLE ledger.duplicate_attempts
    ADD COLUMN generation integer NOT NULL DEFAULT 0
        CONSTRAINT duplicate_generation_not_negative CHECK (generation >= 0);

-- The advisory lock key of a worker-month: one of 1024 buckets, so that a batch re-booking
-- thousands of months takes a bounded number of locks.
CREATE FUNCTION ledger.worker_month_lock(nik text, period text) RETURNS bigint
    LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT hashtextextended('worker-month:' || (hashtext(nik || ':' || period) & 1023)::text, 0)
$$;

-- May generation g of a worker-month be booked now? For g = 0: when nothing of the month is
-- booked. For g >= 1: when every booked row of the month is cancelled, none is of generation
-- g or later, and an earlier generation is closed (booked, or held and cancelled while held).
CREATE FUNCTION ledger.generation_may_be_booked(p_nik text, p_period text, p_generation integer)
    RETURNS boolean LANGUAGE sql STABLE AS $$
    SELECT NOT EXISTS (
               SELECT 1 FROM ledger.contributions c
                WHERE c.nik = p_nik AND c.period = p_period
                  AND (c.generation >= p_generation
                       OR NOT EXISTS (SELECT 1 FROM ledger.cancellations x
                                       WHERE x.contribution_id = c.contribution_id)))
       AND (p_generation = 0
            OR EXISTS (SELECT 1 FROM ledger.contributions c
                        WHERE c.nik = p_nik AND c.period = p_period
                          AND c.generation < p_generation)
            OR EXISTS (SELECT 1 FROM ledger.held_contributions h
                         JOIN ledger.held_resolutions r ON r.contribution_id = h.contribution_id
                        WHERE h.nik = p_nik AND h.period = p_period
                          AND h.generation < p_generation AND r.outcome = 'cancelled'))
$$;

CREATE FUNCTION ledger.check_generation() RETURNS trigger
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    -- The check must see rows committed meanwhile by another transaction.
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        RAISE EXCEPTION 'a contribution of generation % is booked only in a READ COMMITTED transaction',
            NEW.generation USING ERRCODE = 'feature_not_supported';
    END IF;
    PERFORM pg_advisory_xact_lock(ledger.worker_month_lock(NEW.nik, NEW.period));
    IF NOT ledger.generation_may_be_booked(NEW.nik, NEW.period, NEW.generation) THEN
        RAISE EXCEPTION 'contribution % (generation %) is not booked: its month has an active payer, a later generation, or no earlier generation that was cancelled',
            NEW.contribution_id, NEW.generation USING ERRCODE = 'unique_violation';
    END IF;
    RETURN NEW;
END;
$$;

CREATE TRIGGER contributions_generation_check BEFORE INSERT ON ledger.contributions
    FOR EACH ROW WHEN (NEW.generation > 0) EXECUTE FUNCTION ledger.check_generation();

-- A hold that was cancelled (deregistration) or found a duplicate is never booked.
CREATE FUNCTION ledger.refuse_resolved_holds() RETURNS trigger
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    bad text;
BEGIN
    EXECUTE $sql$
        SELECT n.contribution_id::text
          FROM new_contributions n
          JOIN ledger.held_resolutions r ON r.contribution_id = n.contribution_id
         WHERE r.outcome <> 'booked'
         LIMIT 1
    $sql$ INTO bad;
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION 'contribution % was cancelled or found a duplicate while held: it is never booked', bad
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER contributions_not_resolved_holds AFTER INSERT ON ledger.contributions
    REFERENCING NEW TABLE AS new_contributions
    FOR EACH STATEMENT EXECUTE FUNCTION ledger.refuse_resolved_holds();

REVOKE ALL ON FUNCTION ledger.worker_month_lock(text, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION ledger.generation_may_be_booked(text, text, integer) FROM PUBLIC;
REVOKE ALL ON FUNCTION ledger.check_generation() FROM PUBLIC;
REVOKE ALL ON FUNCTION ledger.refuse_resolved_holds() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ledger.worker_month_lock(text, text) TO iuran_ledger_writer;
GRANT EXECUTE ON FUNCTION ledger.generation_may_be_booked(text, text, integer)
    TO iuran_ledger_writer;

-- Finance sees the generation of each contribution (a month booked again after a
-- deregistration has two rows: the cancelled one and the new one). Columns are added at the
-- end, so the views keep their grants and the views built on them.
CREATE OR REPLACE VIEW finance.contributions AS
SELECT c.contribution_id, c.nik, c.programme, c.period, c.due_date, c.amount_idr,
       c.jkk_idr, c.jkm_idr, c.opd_code, c.category, c.kecamatan, c.funding_source,
       CASE WHEN x.contribution_id IS NOT NULL THEN 'cancelled'
            WHEN s.bill_id IS NOT NULL THEN 'paid'
            WHEN l.bill_id IS NOT NULL THEN 'billed'
            ELSE 'booked' END AS status,
       l.bill_id, b.sequence AS bill_sequence, s.payment_id, p.paid_at,
       c.booked_at, x.cancelled_at, c.schedule_id, c.registration_event_id, c.generation
  FROM ledger.contributions c
  LEFT JOIN ledger.cancellations x ON x.contribution_id = c.contribution_id
  LEFT JOIN ledger.bill_lines l ON l.contribution_id = c.contribution_id
  LEFT JOIN ledger.bills b ON b.bill_id = l.bill_id
  LEFT JOIN ledger.bill_settlements s ON s.bill_id = l.bill_id
  LEFT JOIN ledger.payments p ON p.payment_id = s.payment_id
UNION ALL
SELECT h.contribution_id, h.nik, h.programme, h.period, h.due_date, h.amount_idr,
       h.jkk_idr, h.jkm_idr, h.opd_code, h.category, h.kecamatan, h.funding_source,
       CASE WHEN r.outcome = 'cancelled' THEN 'cancelled' ELSE 'held' END,
       NULL::uuid, NULL::integer, NULL::uuid, NULL::timestamptz,
       NULL::timestamptz, r.resolved_at, h.schedule_id, h.registration_event_id, h.generation
  FROM ledger.held_contributions h
  LEFT JOIN ledger.held_resolutions r ON r.contribution_id = h.contribution_id
 WHERE r.contribution_id IS NULL OR r.outcome = 'cancelled';

CREATE OR REPLACE VIEW finance.worker_history AS
SELECT nik, programme, period, contribution_id, 'booked' AS event, booked_at AS at,
       amount_idr, opd_code, NULL::text AS detail, generation
  FROM ledger.contributions
UNION ALL
SELECT nik, programme, period, contribution_id, 'held', held_at, amount_idr, opd_code, reason,
       generation
  FROM ledger.held_contributions
UNION ALL
SELECT h.nik, h.programme, h.period, h.contribution_id, 'cancelled', r.resolved_at,
       h.amount_idr, h.opd_code, 'cancelled while held', h.generation
  FROM ledger.held_resolutions r JOIN ledger.held_contributions h USING (contribution_id)
 WHERE r.outcome = 'cancelled'
UNION ALL
SELECT c.nik, c.programme, c.period, c.contribution_id, 'cancelled', x.cancelled_at,
       c.amount_idr, c.opd_code, NULL, c.generation
  FROM ledger.cancellations x JOIN ledger.contributions c USING (contribution_id)
UNION ALL
SELECT c.nik, c.programme, c.period, c.contribution_id, 'cancellation_refused', f.seen_at,
       c.amount_idr, c.opd_code, f.reason, c.generation
  FROM ledger.cancellations_refused f JOIN ledger.contributions c USING (contribution_id)
UNION ALL
SELECT c.nik, c.programme, c.period, c.contribution_id, 'billed', b.issued_at,
       l.amount_idr, c.opd_code, 'bill ' || b.period || ' #' || b.sequence, c.generation
  FROM ledger.bill_lines l
  JOIN ledger.bills b ON b.bill_id = l.bill_id
  JOIN ledger.contributions c ON c.contribution_id = l.contribution_id
UNION ALL
SELECT c.nik, c.programme, c.period, c.contribution_id, 'paid', p.paid_at,
       t.amount_idr, c.opd_code, 'payment ' || p.reference, c.generation
  FROM ledger.transfers t
  JOIN ledger.contributions c ON c.contribution_id = t.contribution_id
  JOIN ledger.bill_lines l ON l.contribution_id = t.contribution_id
  JOIN ledger.bill_settlements s ON s.bill_id = l.bill_id
  JOIN ledger.payments p ON p.payment_id = s.payment_id
 WHERE t.kind = 'settlement'
UNION ALL
SELECT nik, programme, period, contribution_id, 'duplicate_attempt', seen_at, amount_idr,
       opd_code, 'month already paid by another programme or payer', generation
  FROM ledger.duplicate_attempts;
