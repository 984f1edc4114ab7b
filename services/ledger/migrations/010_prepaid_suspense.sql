-- Billing modes, the suspense account and credits.
--
-- * A programme is billed monthly (one bill per month, lines of that month) or prepaid (N
--   months of each worker on one bill, issued and due at enrolment, charged to the fiscal
--   year of that day). ledger.programme_billing records each programme's mode once.
-- * Every payment received is in the journal at once: a receipt transfer moves its whole
--   amount from the cash of the funding source to the suspense account
--   (asset:unapplied:<programme>); settling a bill moves it on, line by line, to the payable.
--   What matches no bill stays in suspense until a person applies it to a bill, refunds it
--   or carries it over (a discrepancy resolution that moves the money).
-- * A month already on a bill (or paid) that is deregistered is cancelled with a credit:
--   the premium expense is reversed against asset:bpjs_credit:<programme> (carried over at
--   BPJS) and ledger.credits records it; a refund moves it to asset:refund_due:<programme>.

CREATE TABLE ledger.programme_billing (
    programme    text        PRIMARY KEY,
    mode         text        NOT NULL CHECK (mode IN ('monthly', 'prepaid')),
    months       integer     NOT NULL CHECK (months IN (1, 3, 6, 12)),
    recorded_at  timestamptz NOT NULL DEFAULT now()
);

ALTER TABLE ledger.bills
    ADD COLUMN billing text NOT NULL DEFAULT 'monthly'
        CONSTRAINT bills_billing_mode CHECK (billing IN ('monthly', 'prepaid')),
    ADD COLUMN fiscal_year integer
        CONSTRAINT bills_fiscal_year CHECK (fiscal_year BETWEEN 2000 AND 2100);

-- Lines of a monthly bill are of its month; lines of a prepaid bill of any month of the
-- programme. Otherwise as in 006.
CREATE OR REPLACE FUNCTION ledger.check_bill_lines() RETURNS trigger
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

-- New kinds of transfer, and the payment a transfer moves money of.
ALTER TABLE ledger.transfers DROP CONSTRAINT transfers_kind_check;
ALTER TABLE ledger.transfers ADD CONSTRAINT transfers_kind_check CHECK (kind IN (
    'accrual', 'settlement', 'reversal', 'receipt', 'refund', 'carry_over'));
ALTER TABLE ledger.transfers ADD COLUMN payment_id uuid REFERENCES ledger.payments (payment_id);
CREATE INDEX transfers_payment ON ledger.transfers (payment_id) WHERE payment_id IS NOT NULL;
CREATE UNIQUE INDEX transfers_one_receipt ON ledger.transfers (payment_id)
    WHERE kind = 'receipt';

-- How a person disposed of the money of a discrepancy (all of it, once): applied to a bill,
-- refunded, carried over; or 'topped_up' when a later payment completed the bill with it.
-- Resolutions recorded before this migration moved no money (action NULL).
ALTER TABLE ledger.discrepancy_resolutions
    ADD COLUMN action text CONSTRAINT discrepancy_resolutions_action
        CHECK (action IN ('applied', 'refund', 'carry_over', 'topped_up')),
    ADD COLUMN bill_id uuid REFERENCES ledger.bills (bill_id),
    ADD COLUMN applied_idr bigint NOT NULL DEFAULT 0 CHECK (applied_idr >= 0),
    ADD COLUMN refunded_idr bigint NOT NULL DEFAULT 0 CHECK (refunded_idr >= 0),
    ADD COLUMN carried_over_idr bigint NOT NULL DEFAULT 0 CHECK (carried_over_idr >= 0);

-- A billed (or paid) month that was deregistered: its premium is a credit at BPJS.
CREATE TABLE ledger.credits (
    contribution_id        uuid        PRIMARY KEY REFERENCES ledger.cancellations (contribution_id),
    bill_id                uuid        NOT NULL REFERENCES ledger.bills (bill_id),
    programme              text        NOT NULL,
    amount_idr             bigint      NOT NULL CHECK (amount_idr > 0),
    recorded_at            timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX credits_programme ON ledger.credits (programme);

-- A credit refunded to the treasury instead of carried over (once).
CREATE TABLE ledger.credit_refunds (
    contribution_id  uuid        PRIMARY KEY REFERENCES ledger.credits (contribution_id),
    reason           text        NOT NULL CHECK (length(reason) BETWEEN 1 AND 1000),
    refunded_by      text        NOT NULL CHECK (length(refunded_by) BETWEEN 1 AND 100),
    refunded_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TRIGGER programme_billing_append_only BEFORE UPDATE OR DELETE ON ledger.programme_billing
    FOR EACH ROW EXECUTE FUNCTION ledger.refuse_change();
CREATE TRIGGER programme_billing_no_truncate BEFORE TRUNCATE ON ledger.programme_billing
    FOR EACH STATEMENT EXECUTE FUNCTION ledger.refuse_change();
CREATE TRIGGER credits_append_only BEFORE UPDATE OR DELETE ON ledger.credits
    FOR EACH ROW EXECUTE FUNCTION ledger.refuse_change();
CREATE TRIGGER credits_no_truncate BEFORE TRUNCATE ON ledger.credits
    FOR EACH STATEMENT EXECUTE FUNCTION ledger.refuse_change();
CREATE TRIGGER credit_refunds_append_only BEFORE UPDATE OR DELETE ON ledger.credit_refunds
    FOR EACH ROW EXECUTE FUNCTION ledger.refuse_change();
CREATE TRIGGER credit_refunds_no_truncate BEFORE TRUNCATE ON ledger.credit_refunds
    FOR EACH STATEMENT EXECUTE FUNCTION ledger.refuse_change();

-- Payments recorded before this migration as discrepancies moved no money: their receipt
-- is booked now, so the journal's cash equals the payments received from the start.
-- (Settled ones credited cash directly, line by line.)
INSERT INTO ledger.transfers (transfer_id, kind, debit_account, credit_account, amount_idr,
                              reference, payment_id)
SELECT md5('receipt:' || p.payment_id::text)::uuid, 'receipt',
       'asset:unapplied:' || p.programme,
       'asset:cash:' || coalesce((SELECT min(a.funding_source) FROM ledger.budget_allocations a
                                   WHERE a.programme = p.programme), 'unassigned'),
       p.amount_idr, p.reference, p.payment_id
  FROM ledger.payments p
 WHERE p.outcome = 'discrepancy' AND p.amount_idr > 0
ON CONFLICT DO NOTHING;

-- The due date that makes a month late: a prepaid month is due with its bill (never before
-- it is billed); a monthly month on its own due date.
CREATE FUNCTION finance.effective_due_date(billing text, bill_due date, month_due date)
    RETURNS date LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN billing = 'prepaid' THEN bill_due ELSE month_due END
$$;
GRANT EXECUTE ON FUNCTION finance.effective_due_date(text, date, date)
    TO iuran_finance, iuran_ledger_writer;

-- Issued bills: workers are distinct NIKs (a prepaid bill has several months per worker);
-- lines, billing mode, fiscal year and the months covered are added at the end.
CREATE OR REPLACE VIEW finance.bills AS
SELECT b.bill_id, b.programme, b.period, b.sequence, b.due_date,
       coalesce(w.workers, 0)::integer AS workers,
       b.amount_idr, b.issued_at, b.issued_by,
       CASE WHEN s.bill_id IS NOT NULL THEN 'paid'
            WHEN b.due_date < finance.today() THEN 'past_due'
            ELSE 'open' END AS status,
       s.payment_id, p.reference AS payment_reference, p.paid_at,
       b.lines, b.billing, b.fiscal_year, w.first_period, w.last_period
  FROM ledger.bills b
  LEFT JOIN LATERAL (
        SELECT count(DISTINCT c.nik) AS workers, min(c.period) AS first_period,
               max(c.period) AS last_period
          FROM ledger.bill_lines l JOIN ledger.contributions c USING (contribution_id)
         WHERE l.bill_id = b.bill_id) w ON true
  LEFT JOIN ledger.bill_settlements s ON s.bill_id = b.bill_id
  LEFT JOIN ledger.payments p ON p.payment_id = s.payment_id;

-- Booked and not yet paid, per programme and month; past due by the effective due date (a
-- prepaid month not yet billed is not past due: it waits for its prepaid bill).
CREATE OR REPLACE VIEW finance.outstanding AS
SELECT fc.programme, fc.period, min(fc.due_date) AS due_date, count(*) AS contributions,
       sum(fc.amount_idr)::bigint AS outstanding_idr,
       coalesce(sum(fc.amount_idr) FILTER (WHERE fc.status = 'billed'), 0)::bigint AS billed_idr,
       coalesce(sum(fc.amount_idr) FILTER (WHERE fc.status = 'booked'), 0)::bigint AS unbilled_idr,
       coalesce(bool_or(finance.effective_due_date(coalesce(b.billing, pb.mode), b.due_date,
                                                   fc.due_date) < finance.today()), false)
           AS past_due
  FROM finance.contributions fc
  LEFT JOIN ledger.bills b ON b.bill_id = fc.bill_id
  LEFT JOIN ledger.programme_billing pb ON pb.programme = fc.programme
 WHERE fc.status IN ('booked', 'billed')
 GROUP BY fc.programme, fc.period;

-- Workers with months past their effective due date and not paid. Lapse risk (three or more
-- unpaid months) concerns monthly billing only: a prepaid worker's months are paid up front
-- with one bill, so a prepaid worker is never at lapse risk (a late prepaid bill shows in
-- finance.bills as past_due and here as unpaid months).
CREATE OR REPLACE VIEW finance.arrears AS
WITH late AS (
    SELECT fc.*, coalesce(b.billing, pb.mode, 'monthly') AS billing
      FROM finance.contributions fc
      LEFT JOIN ledger.bills b ON b.bill_id = fc.bill_id
      LEFT JOIN ledger.programme_billing pb ON pb.programme = fc.programme
     WHERE fc.status IN ('booked', 'billed', 'held')
       AND finance.effective_due_date(coalesce(b.billing, pb.mode), b.due_date, fc.due_date)
           < finance.today()
)
SELECT nik, programme,
       (array_agg(opd_code ORDER BY period DESC))[1] AS opd_code,
       (array_agg(category ORDER BY period DESC))[1] AS category,
       (array_agg(kecamatan ORDER BY period DESC))[1] AS kecamatan,
       count(*) AS unpaid_months,
       sum(amount_idr)::bigint AS unpaid_idr,
       min(period) AS oldest_unpaid_period,
       max(period) AS latest_unpaid_period,
       min(due_date) AS oldest_due_date,
       count(*) FILTER (WHERE status = 'held') AS held_months,
       count(*) FILTER (WHERE billing = 'monthly') >= 3 AS lapse_risk,
       bool_or(billing = 'prepaid') AS prepaid
  FROM late
 GROUP BY nik, programme;

-- Discrepancies with what became of their money: in suspense (unapplied_idr) until a
-- person applies, refunds or carries it over.
CREATE OR REPLACE VIEW finance.discrepancies AS
SELECT d.discrepancy_id, d.payment_id, d.programme, d.period, d.kind, d.expected_idr,
       d.paid_idr, d.paid_idr - d.expected_idr AS difference_idr, d.reference, d.detail,
       p.paid_at, d.recorded_at,
       CASE WHEN r.discrepancy_id IS NULL THEN 'open' ELSE 'resolved' END AS status,
       r.resolution, r.resolved_by, r.resolved_at,
       CASE WHEN r.discrepancy_id IS NULL THEN d.paid_idr ELSE 0 END::bigint AS unapplied_idr,
       r.action, r.bill_id AS applied_to_bill_id, coalesce(r.applied_idr, 0) AS applied_idr,
       coalesce(r.refunded_idr, 0) AS refunded_idr,
       coalesce(r.carried_over_idr, 0) AS carried_over_idr
  FROM ledger.discrepancies d
  JOIN ledger.payments p ON p.payment_id = d.payment_id
  LEFT JOIN ledger.discrepancy_resolutions r ON r.discrepancy_id = d.discrepancy_id;

-- Credits at BPJS: deregistered months that were already billed or paid, and discrepancy
-- money carried over. Status carried_over (credit held at BPJS) or refunded. credit_id is
-- the contribution (deregistration) or the payment (carried over).
CREATE VIEW finance.credits AS
SELECT k.contribution_id AS credit_id, 'deregistration'::text AS source, k.contribution_id,
       NULL::uuid AS payment_id,
       c.nik, k.programme, c.period, k.bill_id, k.amount_idr,
       CASE WHEN f.contribution_id IS NULL THEN 'carried_over' ELSE 'refunded' END AS status,
       k.recorded_at, f.refunded_at, f.reason AS refund_reason
  FROM ledger.credits k
  JOIN ledger.contributions c USING (contribution_id)
  LEFT JOIN ledger.credit_refunds f USING (contribution_id)
UNION ALL
SELECT d.payment_id, 'payment', NULL, d.payment_id, NULL, d.programme, d.period, NULL, r.carried_over_idr,
       'carried_over', r.resolved_at, NULL, NULL
  FROM ledger.discrepancy_resolutions r JOIN ledger.discrepancies d USING (discrepancy_id)
 WHERE r.carried_over_idr > 0;

-- Cash paid out per programme against the journal: every payment received is a receipt (or,
-- before migration 010, settlements) on the cash account; the difference is always zero.
CREATE VIEW finance.cash_reconciliation AS
WITH received AS (
    SELECT programme, count(*) AS payments, sum(amount_idr)::bigint AS received_idr
      FROM ledger.payments GROUP BY programme
), journal AS (
    SELECT p.programme, sum(t.amount_idr)::bigint AS cash_idr
      FROM ledger.transfers t JOIN ledger.payments p ON p.payment_id = t.payment_id
     WHERE t.kind = 'receipt'
     GROUP BY p.programme
), legacy AS (
    SELECT p.programme, sum(t.amount_idr)::bigint AS cash_idr
      FROM ledger.transfers t
      JOIN ledger.bill_lines l ON l.contribution_id = t.contribution_id
      JOIN ledger.bill_settlements s ON s.bill_id = l.bill_id
      JOIN ledger.payments p ON p.payment_id = s.payment_id
     WHERE t.kind = 'settlement' AND t.credit_account LIKE 'asset:cash:%'
     GROUP BY p.programme
), suspense AS (
    SELECT substr(account, length('asset:unapplied:') + 1) AS programme,
           sum(CASE WHEN side = 'debit' THEN amount_idr ELSE -amount_idr END)::bigint
               AS unapplied_idr
      FROM (SELECT debit_account AS account, 'debit' AS side, amount_idr FROM ledger.transfers
            UNION ALL
            SELECT credit_account, 'credit', amount_idr FROM ledger.transfers) m
     WHERE account LIKE 'asset:unapplied:%'
     GROUP BY 1
)
SELECT r.programme, r.payments, r.received_idr,
       (coalesce(j.cash_idr, 0) + coalesce(l.cash_idr, 0))::bigint AS journal_cash_idr,
       coalesce(s.unapplied_idr, 0) AS unapplied_idr,
       (r.received_idr - coalesce(j.cash_idr, 0) - coalesce(l.cash_idr, 0))::bigint
           AS difference_idr
  FROM received r
  LEFT JOIN journal j USING (programme)
  LEFT JOIN legacy l USING (programme)
  LEFT JOIN suspense s USING (programme);
