-- Every contribution the ledger knows of, with its status: held (not booked yet: over
-- budget, or waiting for an earlier generation's cancellation), booked, billed (on an issued
-- bill), paid, cancelled (also a month whose cancellation arrived before it); and its
-- generation (a month booked again after a deregistration has two rows: the cancelled one
-- and the new one).
CREATE VIEW finance.contributions AS
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
GRANT SELECT ON finance.contributions TO iuran_ledger_writer, iuran_finance;
