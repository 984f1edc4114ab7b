-- Every month the ledger holds for a registration event, and what it is: booked, held,
-- cancelled (booked or held, stopped since, or stopped before it arrived), duplicate (paid by another payer), refused
-- (finance.refused_contributions), and for a deregistration: stopped (months it cancelled,
-- also before they arrived)
-- or too_late (already billed or paid: finance.worker_history says cancellation_refused).
CREATE VIEW finance.registration_months AS
SELECT c.registration_event_id AS event_id,
       CASE WHEN x.contribution_id IS NULL THEN 'booked' ELSE 'cancelled' END AS what,
       c.period
  FROM ledger.contributions c
  LEFT JOIN ledger.cancellations x ON x.contribution_id = c.contribution_id
UNION ALL
SELECT h.registration_event_id,
       CASE r.outcome WHEN 'cancelled' THEN 'cancelled' WHEN 'duplicate' THEN 'duplicate'
                      ELSE 'held' END,
       h.period
  FROM ledger.held_contributions h
  LEFT JOIN ledger.held_resolutions r ON r.contribution_id = h.contribution_id
 WHERE r.outcome IS DISTINCT FROM 'booked'  -- a hold booked since is a contribution
UNION ALL
SELECT registration_event_id, 'duplicate', period FROM ledger.duplicate_attempts
UNION ALL
SELECT registration_event_id, 'refused', period FROM ledger.refused_contributions
UNION ALL
SELECT x.registration_event_id, 'stopped', c.period
  FROM ledger.cancellations x JOIN ledger.contributions c USING (contribution_id)
UNION ALL
SELECT d.event_id, 'stopped', h.period
  FROM registry.decisions d
  CROSS JOIN LATERAL unnest(d.schedule_ids) AS s(schedule_id)
  JOIN ledger.held_resolutions r ON r.schedule_id = s.schedule_id AND r.outcome = 'cancelled'
  JOIN ledger.held_contributions h ON h.contribution_id = r.contribution_id
 WHERE d.event_type = 'deregistered'
UNION ALL
SELECT e.registration_event_id, 'stopped', e.period FROM ledger.early_cancellations e
UNION ALL
SELECT a.registration_event_id, 'cancelled', e.period
  FROM ledger.cancelled_on_arrival a JOIN ledger.early_cancellations e USING (contribution_id)
UNION ALL
SELECT f.registration_event_id, 'too_late', c.period
  FROM ledger.cancellations_refused f JOIN ledger.contributions c USING (contribution_id);
GRANT SELECT ON finance.registration_months TO iuran_ledger_writer, iuran_finance;
