-- Money paths finance must see and undo: a voided receipt, a refund received from BPJS,
-- sums that cannot overflow, and premiums dated by the period they apply from.

-- New kinds of journal entry:
--   void             reverses a receipt (unapplied -> cash) that should never have been taken
--                    (a payment confirmed twice under two ids); the money is in suspense;
--   refund_received  BPJS returned money it owed (refund_due -> cash), as the bank statement
--                    shows it.
ALTER TABLE ledger.transfers DROP CONSTRAINT transfers_kind_check;
ALTER TABLE ledger.transfers ADD CONSTRAINT transfers_kind_check CHECK (kind IN (
    'accrual', 'settlement', 'reversal', 'receipt', 'refund', 'carry_over', 'void',
    'refund_received'));

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

-- The discrepancy of a voided payment is resolved by the void.
ALTER TABLE ledger.discrepancy_resolutions DROP CONSTRAINT discrepancy_resolutions_action;
ALTER TABLE ledger.discrepancy_resolutions ADD CONSTRAINT discrepancy_resolutions_action
    CHECK (action IN ('applied', 'refund', 'carry_over', 'topped_up', 'voided'));

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

-- Account balances of the double-entry journal (debits minus credits); they sum to zero.
-- Sums are numeric: no set of amounts, however large, makes the view fail.
DROP VIEW finance.account_balances;
CREATE VIEW finance.account_balances AS
SELECT account, sum(debit_idr) AS debit_idr, sum(credit_idr) AS credit_idr,
       sum(debit_idr - credit_idr) AS balance_idr
  FROM (SELECT debit_account AS account, amount_idr::numeric AS debit_idr,
               0::numeric AS credit_idr
          FROM ledger.transfers
        UNION ALL
        SELECT credit_account, 0::numeric, amount_idr::numeric FROM ledger.transfers) moves
 GROUP BY account;

-- Cash received per programme against the journal: every payment received is a receipt (or,
-- before migration 010, settlements) on the cash account, a voided one is reversed; the
-- difference is always zero. Sums are numeric.
DROP VIEW finance.cash_reconciliation;
CREATE VIEW finance.cash_reconciliation AS
WITH received AS (
    SELECT p.programme, count(*) AS payments, sum(p.amount_idr::numeric) AS received_idr,
           coalesce(sum(v.amount_idr::numeric), 0) AS voided_idr
      FROM ledger.payments p LEFT JOIN ledger.payment_voids v USING (payment_id)
     GROUP BY p.programme
), journal AS (
    SELECT p.programme,
           sum(CASE t.kind WHEN 'receipt' THEN t.amount_idr::numeric
                           ELSE -t.amount_idr::numeric END) AS cash_idr
      FROM ledger.transfers t JOIN ledger.payments p ON p.payment_id = t.payment_id
     WHERE t.kind IN ('receipt', 'void')
     GROUP BY p.programme
), legacy AS (
    SELECT p.programme, sum(t.amount_idr::numeric) AS cash_idr
      FROM ledger.transfers t
      JOIN ledger.bill_lines l ON l.contribution_id = t.contribution_id
      JOIN ledger.bill_settlements s ON s.bill_id = l.bill_id
      JOIN ledger.payments p ON p.payment_id = s.payment_id
     WHERE t.kind = 'settlement' AND t.credit_account LIKE 'asset:cash:%'
     GROUP BY p.programme
), suspense AS (
    SELECT substr(account, length('asset:unapplied:') + 1) AS programme,
           sum(CASE WHEN side = 'debit' THEN amount_idr ELSE -amount_idr END) AS unapplied_idr
      FROM (SELECT debit_account AS account, 'debit' AS side, amount_idr::numeric AS amount_idr
              FROM ledger.transfers
            UNION ALL
            SELECT credit_account, 'credit', amount_idr::numeric FROM ledger.transfers) m
     WHERE account LIKE 'asset:unapplied:%'
     GROUP BY 1
)
SELECT r.programme, r.payments, r.received_idr,
       coalesce(j.cash_idr, 0) + coalesce(l.cash_idr, 0) AS journal_cash_idr,
       coalesce(s.unapplied_idr, 0) AS unapplied_idr,
       r.received_idr - r.voided_idr - coalesce(j.cash_idr, 0) - coalesce(l.cash_idr, 0)
           AS difference_idr,
       r.voided_idr
  FROM received r
  LEFT JOIN journal j USING (programme)
  LEFT JOIN legacy l USING (programme)
  LEFT JOIN suspense s USING (programme);

-- Voided receipts and refunds received, for finance.
CREATE VIEW finance.payment_voids AS
SELECT v.payment_id, p.programme, p.period, p.reference, p.paid_at, v.amount_idr, v.reason,
       v.voided_by, v.voided_at
  FROM ledger.payment_voids v JOIN ledger.payments p USING (payment_id);

CREATE VIEW finance.refunds_received AS
SELECT refund_id, programme, amount_idr, bank_reference, received_on, recorded_by, recorded_at
  FROM ledger.refunds_received;

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

-- The rates in force: the programme's latest recorded rate set.
CREATE VIEW ledger.current_premium_rates AS
SELECT r.programme, r.effective_from, r.monthly_idr, r.jkk_idr, r.jkm_idr, r.recorded_at
  FROM ledger.premium_rates r
 WHERE r.rate_set = (SELECT l.rate_set FROM ledger.premium_rates l
                      WHERE l.programme = r.programme ORDER BY l.rate_id DESC LIMIT 1);

CREATE VIEW finance.premium_rates AS
SELECT programme, effective_from, monthly_idr, jkk_idr, jkm_idr, recorded_at
  FROM ledger.current_premium_rates;
