-- The booking rules moved to Python (services/ledger/model.py); the database keeps the
-- invariants. What this changes:
-- * ledger.early_cancellations: a cancellation that arrived before the months it cancels
--   (same columns as a booked month); those months are never booked.
-- * A month may wait for its worker-month's earlier generation to be cancelled
--   (held reason awaiting_cancellation).
-- * A later generation of a worker-month may be booked when no row of the month is active
--   and none is of that generation or later, whatever arrived first.
-- * A billed month that is cancelled is a credit at BPJS: the money is there, so it stays
--   committed in the budget allocation (cash out of an allocation never exceeds it).

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
CREATE TRIGGER early_cancellations_append_only
    BEFORE UPDATE OR DELETE ON ledger.early_cancellations
    FOR EACH ROW EXECUTE FUNCTION ledger.refuse_change();
CREATE TRIGGER early_cancellations_no_truncate BEFORE TRUNCATE ON ledger.early_cancellations
    FOR EACH STATEMENT EXECUTE FUNCTION ledger.refuse_change();
GRANT SELECT, INSERT ON ledger.early_cancellations TO iuran_ledger_writer;

-- A booked month is never in the tombstones, nor a tombstoned month booked.
ALTER TABLE ledger.held_contributions DROP CONSTRAINT held_contributions_reason_check;
ALTER TABLE ledger.held_contributions ADD CONSTRAINT held_contributions_reason_check
    CHECK (reason IN ('budget_exceeded', 'no_allocation', 'awaiting_cancellation'));

CREATE OR REPLACE FUNCTION ledger.generation_may_be_booked(
    p_nik text, p_period text, p_generation integer)
    RETURNS boolean LANGUAGE sql STABLE AS $$
    SELECT NOT EXISTS (
               SELECT 1 FROM ledger.contributions c
                WHERE c.nik = p_nik AND c.period = p_period
                  AND (c.generation >= p_generation
                       OR NOT EXISTS (SELECT 1 FROM ledger.cancellations x
                                       WHERE x.contribution_id = c.contribution_id)))
$$;

-- The allocation's booked_idr is what it committed: months booked and not cancelled, plus
-- months cancelled after they were billed (credits at BPJS).
CREATE OR REPLACE FUNCTION ledger.track_budget() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $_$
DECLARE
    unallocated text;
BEGIN
    EXECUTE $sql$
        WITH moves AS (
            SELECT c.programme, c.funding_source,
                   sum(CASE WHEN t.kind = 'accrual' THEN t.amount_idr
                            WHEN t.debit_account LIKE 'asset:bpjs_credit:%' THEN 0
                            ELSE -t.amount_idr END) AS delta
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
        SELECT m.programme
          FROM moves m
         WHERE NOT EXISTS (SELECT 1 FROM updated u
                            WHERE u.programme = m.programme
                              AND u.funding_source = m.funding_source)
         LIMIT 1
    $sql$ INTO unallocated;
    IF unallocated IS NOT NULL THEN
        RAISE EXCEPTION 'no budget allocation for programme %', unallocated
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NULL;
END;
$_$;

-- Months cancelled before they arrived show as cancelled months.
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
 WHERE r.contribution_id IS NULL OR r.outcome = 'cancelled'
UNION ALL
SELECT e.contribution_id, e.nik, e.programme, e.period, e.due_date, e.amount_idr,
       e.jkk_idr, e.jkm_idr, e.opd_code, e.category, e.kecamatan, e.funding_source,
       'cancelled', NULL::uuid, NULL::integer, NULL::uuid, NULL::timestamptz,
       NULL::timestamptz, e.seen_at, e.schedule_id, e.registration_event_id, e.generation
  FROM ledger.early_cancellations e;

-- Budget utilisation: what is booked (live months), the credits at BPJS (cancelled after
-- they were billed: money at BPJS, still committed) and the room left, apart.
CREATE OR REPLACE VIEW finance.budget_utilisation AS
WITH paid AS (
    SELECT c.programme, c.funding_source, sum(t.amount_idr)::bigint AS paid_idr
      FROM ledger.transfers t JOIN ledger.contributions c ON c.contribution_id = t.contribution_id
     WHERE t.kind = 'settlement'
     GROUP BY c.programme, c.funding_source
), held AS (
    SELECT h.programme, h.funding_source, count(*) AS held, sum(h.amount_idr)::bigint AS held_idr
      FROM ledger.held_contributions h
     WHERE NOT EXISTS (SELECT 1 FROM ledger.held_resolutions r
                        WHERE r.contribution_id = h.contribution_id)
     GROUP BY h.programme, h.funding_source
), credit AS (
    SELECT c.programme, c.funding_source, sum(k.amount_idr)::bigint AS credit_idr
      FROM ledger.credits k JOIN ledger.contributions c USING (contribution_id)
     GROUP BY c.programme, c.funding_source
)
SELECT coalesce(a.programme, held.programme) AS programme,
       coalesce(a.funding_source, held.funding_source) AS funding_source,
       a.fiscal_year,
       coalesce(a.allocated_idr, 0) AS allocated_idr,
       (coalesce(a.booked_idr, 0) - coalesce(credit.credit_idr, 0))::bigint AS booked_idr,
       coalesce(paid.paid_idr, 0) AS paid_idr,
       coalesce(held.held_idr, 0) AS held_idr,
       coalesce(held.held, 0) AS held_contributions,
       coalesce(a.allocated_idr - a.booked_idr, 0) AS remaining_idr,
       a.changed_at,
       coalesce(credit.credit_idr, 0) AS credit_idr
  FROM ledger.budget_allocations a
  FULL JOIN held ON held.programme = a.programme AND held.funding_source = a.funding_source
  LEFT JOIN paid ON paid.programme = coalesce(a.programme, held.programme)
                AND paid.funding_source = coalesce(a.funding_source, held.funding_source)
  LEFT JOIN credit ON credit.programme = coalesce(a.programme, held.programme)
                  AND credit.funding_source = coalesce(a.funding_source, held.funding_source);
