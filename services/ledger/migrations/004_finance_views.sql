-- Read-only views for finance and BI tools, in their own schema. Views run with the
-- privileges of their owner: the finance role reads these and nothing in ledger.
CREATE SCHEMA IF NOT EXISTS finance;

-- Local date of Kota Malang (WIB), for what is past due.
CREATE FUNCTION finance.today() RETURNS date LANGUAGE sql STABLE AS $$
    SELECT (now() AT TIME ZONE 'Asia/Jakarta')::date
$$;

-- Every contribution the ledger knows of, with its status:
-- held (over budget, not booked), booked, billed (on an issued bill), paid, cancelled.
CREATE VIEW finance.contributions AS
SELECT c.contribution_id, c.nik, c.programme, c.period, c.due_date, c.amount_idr,
       c.jkk_idr, c.jkm_idr, c.opd_code, c.category, c.kecamatan, c.funding_source,
       CASE WHEN x.contribution_id IS NOT NULL THEN 'cancelled'
            WHEN s.bill_id IS NOT NULL THEN 'paid'
            WHEN l.bill_id IS NOT NULL THEN 'billed'
            ELSE 'booked' END AS status,
       l.bill_id, b.sequence AS bill_sequence, s.payment_id, p.paid_at,
       c.booked_at, x.cancelled_at, c.schedule_id, c.registration_event_id
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
       NULL::timestamptz, r.resolved_at, h.schedule_id, h.registration_event_id
  FROM ledger.held_contributions h
  LEFT JOIN ledger.held_resolutions r ON r.contribution_id = h.contribution_id
 WHERE r.contribution_id IS NULL OR r.outcome = 'cancelled';

-- What is payable to BPJS for each month, per OPD: the active booked contributions, how
-- much of it is on issued bills and how much is paid.
CREATE VIEW finance.monthly_bill AS
SELECT programme, period, opd_code, min(due_date) AS due_date,
       count(*) AS workers,
       sum(amount_idr)::bigint AS amount_idr,
       sum(jkk_idr)::bigint AS jkk_idr,
       sum(jkm_idr)::bigint AS jkm_idr,
       coalesce(sum(amount_idr) FILTER (WHERE status IN ('billed', 'paid')), 0)::bigint AS billed_idr,
       coalesce(sum(amount_idr) FILTER (WHERE status = 'paid'), 0)::bigint AS paid_idr,
       coalesce(sum(amount_idr) FILTER (WHERE status = 'booked'), 0)::bigint AS unbilled_idr
  FROM finance.contributions
 WHERE status IN ('booked', 'billed', 'paid')
 GROUP BY programme, period, opd_code;

-- Issued bills (the original and supplementary ones) and whether they are paid.
CREATE VIEW finance.bills AS
SELECT b.bill_id, b.programme, b.period, b.sequence, b.due_date, b.lines AS workers,
       b.amount_idr, b.issued_at, b.issued_by,
       CASE WHEN s.bill_id IS NOT NULL THEN 'paid'
            WHEN b.due_date < finance.today() THEN 'past_due'
            ELSE 'open' END AS status,
       s.payment_id, p.reference AS payment_reference, p.paid_at
  FROM ledger.bills b
  LEFT JOIN ledger.bill_settlements s ON s.bill_id = b.bill_id
  LEFT JOIN ledger.payments p ON p.payment_id = s.payment_id;

-- Per allocation: what is allocated, booked (active accruals), paid, held and remaining.
CREATE VIEW finance.budget_utilisation AS
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
)
SELECT coalesce(a.programme, held.programme) AS programme,
       coalesce(a.funding_source, held.funding_source) AS funding_source,
       a.fiscal_year,
       coalesce(a.allocated_idr, 0) AS allocated_idr,
       coalesce(a.booked_idr, 0) AS booked_idr,
       coalesce(paid.paid_idr, 0) AS paid_idr,
       coalesce(held.held_idr, 0) AS held_idr,
       coalesce(held.held, 0) AS held_contributions,
       coalesce(a.allocated_idr - a.booked_idr, 0) AS remaining_idr,
       a.changed_at
  FROM ledger.budget_allocations a
  FULL JOIN held ON held.programme = a.programme AND held.funding_source = a.funding_source
  LEFT JOIN paid ON paid.programme = coalesce(a.programme, held.programme)
                AND paid.funding_source = coalesce(a.funding_source, held.funding_source);

-- Every allocation ever set, with its reason: the audit trail of the budget.
CREATE VIEW finance.budget_changes AS
SELECT change_id, programme, funding_source, fiscal_year, previous_idr, allocated_idr,
       allocated_idr - previous_idr AS raised_by_idr, source, reason, changed_by, changed_at
  FROM ledger.budget_allocation_changes;

-- Booked and not yet paid, per programme and month.
CREATE VIEW finance.outstanding AS
SELECT programme, period, min(due_date) AS due_date, count(*) AS contributions,
       sum(amount_idr)::bigint AS outstanding_idr,
       coalesce(sum(amount_idr) FILTER (WHERE status = 'billed'), 0)::bigint AS billed_idr,
       coalesce(sum(amount_idr) FILTER (WHERE status = 'booked'), 0)::bigint AS unbilled_idr,
       min(due_date) < finance.today() AS past_due
  FROM finance.contributions
 WHERE status IN ('booked', 'billed')
 GROUP BY programme, period;

-- Payments that were not applied, with what a person decided about them.
CREATE VIEW finance.discrepancies AS
SELECT d.discrepancy_id, d.payment_id, d.programme, d.period, d.kind, d.expected_idr,
       d.paid_idr, d.paid_idr - d.expected_idr AS difference_idr, d.reference, d.detail,
       p.paid_at, d.recorded_at,
       CASE WHEN r.discrepancy_id IS NULL THEN 'open' ELSE 'resolved' END AS status,
       r.resolution, r.resolved_by, r.resolved_at
  FROM ledger.discrepancies d
  JOIN ledger.payments p ON p.payment_id = d.payment_id
  LEFT JOIN ledger.discrepancy_resolutions r ON r.discrepancy_id = d.discrepancy_id;

-- Workers with months past their due date and not paid (held months included: nobody
-- pays them). Three or more unpaid months make the membership lapse.
CREATE VIEW finance.arrears AS
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
       count(*) >= 3 AS lapse_risk
  FROM finance.contributions
 WHERE status IN ('booked', 'billed', 'held') AND due_date < finance.today()
 GROUP BY nik, programme;

-- Everything that happened to a worker's months, in order.
CREATE VIEW finance.worker_history AS
SELECT nik, programme, period, contribution_id, 'booked' AS event, booked_at AS at,
       amount_idr, opd_code, NULL::text AS detail
  FROM ledger.contributions
UNION ALL
SELECT nik, programme, period, contribution_id, 'held', held_at, amount_idr, opd_code, reason
  FROM ledger.held_contributions
UNION ALL
SELECT h.nik, h.programme, h.period, h.contribution_id, 'cancelled', r.resolved_at,
       h.amount_idr, h.opd_code, 'cancelled while held'
  FROM ledger.held_resolutions r JOIN ledger.held_contributions h USING (contribution_id)
 WHERE r.outcome = 'cancelled'
UNION ALL
SELECT c.nik, c.programme, c.period, c.contribution_id, 'cancelled', x.cancelled_at,
       c.amount_idr, c.opd_code, NULL
  FROM ledger.cancellations x JOIN ledger.contributions c USING (contribution_id)
UNION ALL
SELECT c.nik, c.programme, c.period, c.contribution_id, 'cancellation_refused', f.seen_at,
       c.amount_idr, c.opd_code, f.reason
  FROM ledger.cancellations_refused f JOIN ledger.contributions c USING (contribution_id)
UNION ALL
SELECT c.nik, c.programme, c.period, c.contribution_id, 'billed', b.issued_at,
       l.amount_idr, c.opd_code, 'bill ' || b.period || ' #' || b.sequence
  FROM ledger.bill_lines l
  JOIN ledger.bills b ON b.bill_id = l.bill_id
  JOIN ledger.contributions c ON c.contribution_id = l.contribution_id
UNION ALL
SELECT c.nik, c.programme, c.period, c.contribution_id, 'paid', p.paid_at,
       t.amount_idr, c.opd_code, 'payment ' || p.reference
  FROM ledger.transfers t
  JOIN ledger.contributions c ON c.contribution_id = t.contribution_id
  JOIN ledger.bill_lines l ON l.contribution_id = t.contribution_id
  JOIN ledger.bill_settlements s ON s.bill_id = l.bill_id
  JOIN ledger.payments p ON p.payment_id = s.payment_id
 WHERE t.kind = 'settlement'
UNION ALL
SELECT nik, programme, period, contribution_id, 'duplicate_attempt', seen_at, amount_idr,
       opd_code, 'month already paid by another programme or payer'
  FROM ledger.duplicate_attempts;

-- Account balances of the double-entry journal (debits minus credits); they sum to zero.
CREATE VIEW finance.account_balances AS
SELECT account, sum(debit_idr)::bigint AS debit_idr, sum(credit_idr)::bigint AS credit_idr,
       sum(debit_idr - credit_idr)::bigint AS balance_idr
  FROM (SELECT debit_account AS account, amount_idr AS debit_idr, 0::bigint AS credit_idr
          FROM ledger.transfers
        UNION ALL
        SELECT credit_account, 0::bigint, amount_idr FROM ledger.transfers) moves
 GROUP BY account;
