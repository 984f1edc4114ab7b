-- Everything that happened to a worker's months, in order, with the generation of each; and
-- a registration accepted with a cover_gap warning (its cover lapsed before it started: the
-- row's contribution_id is the registration's event id, its period the first month).
CREATE VIEW finance.worker_history AS
SELECT nik, programme, period, contribution_id, 'booked' AS event, booked_at AS at,
       amount_idr, opd_code, NULL::text AS detail, generation
  FROM ledger.contributions
UNION ALL
SELECT nik, programme, period, contribution_id, 'held', held_at, amount_idr, opd_code, reason,
       generation
  FROM ledger.held_contributions
UNION ALL
SELECT h.nik, h.programme, h.period, h.contribution_id, 'cancelled', r.resolved_at,
       h.amount_idr, h.opd_code,
       coalesce('BPJS rejected the worker (' || v.reason_code || ')', 'cancelled while held'),
       h.generation
  FROM ledger.held_resolutions r JOIN ledger.held_contributions h USING (contribution_id)
  LEFT JOIN ledger.bpjs_cancelled_months m USING (contribution_id)
  LEFT JOIN ledger.bpjs_verifications v ON v.verification_id = m.verification_id
 WHERE r.outcome = 'cancelled'
UNION ALL
SELECT c.nik, c.programme, c.period, c.contribution_id, 'cancelled', x.cancelled_at,
       c.amount_idr, c.opd_code, 'BPJS rejected the worker (' || v.reason_code || ')',
       c.generation
  FROM ledger.cancellations x JOIN ledger.contributions c USING (contribution_id)
  LEFT JOIN ledger.bpjs_cancelled_months m USING (contribution_id)
  LEFT JOIN ledger.bpjs_verifications v ON v.verification_id = m.verification_id
UNION ALL
SELECT e.nik, e.programme, e.period, e.contribution_id, 'cancelled', e.seen_at, e.amount_idr,
       e.opd_code,
       coalesce('BPJS rejected the worker (' || v.reason_code || ') before its month arrived',
                'cancelled before its month arrived'),
       e.generation
  FROM ledger.early_cancellations e
  LEFT JOIN ledger.bpjs_cancelled_months m USING (contribution_id)
  LEFT JOIN ledger.bpjs_verifications v ON v.verification_id = m.verification_id
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
  FROM ledger.duplicate_attempts
UNION ALL
SELECT d.nik, d.programme, (SELECT min(p) FROM unnest(d.periods) p), d.event_id, 'cover_gap',
       d.decided_at, NULL::bigint, d.opd_code, w.warning ->> 'message', 0
  FROM registry.decisions d
 CROSS JOIN LATERAL jsonb_array_elements(d.warnings) AS w (warning)
 WHERE d.outcome <> 'rejected' AND w.warning ->> 'code' = 'cover_gap';
GRANT SELECT ON finance.worker_history TO iuran_ledger_writer, iuran_finance;
