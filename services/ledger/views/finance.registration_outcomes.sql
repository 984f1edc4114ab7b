-- What became of each registration event the validator decided (an event it has not
-- decided yet has no row here: pending), from its decision and the ledger's months:
--   rejected   the validator refused it (errors carry the codes);
--   accepted   decided, nothing in the ledger yet (or nothing to book: a deregistration of
--              months not paid);
--   booked     months booked (some may be duplicates, paid by another payer);
--   held       at least one month waits for budget;
--   cancelled  a deregistration that stopped months, or a registration whose months were
--              all stopped since;
--   refused    the ledger booked none of it: paid by another payer, refused, or (for a
--              deregistration) every month already billed or paid.
-- final: nothing more happens to it by itself (a held month may still be booked when the
-- budget is raised). One row per event; a lookup by event_id reads only its rows.
CREATE VIEW finance.registration_outcomes AS
WITH outcome AS (
    SELECT d.event_id, d.event_type, d.nik, d.programme, d.opd_code, d.outcome AS decision,
           d.periods AS decided_periods, d.errors, d.warnings, d.decided_at, d.schedule_ids,
           coalesce(m.booked, '{}') AS booked_periods, coalesce(m.held, '{}') AS held_periods,
           coalesce(m.cancelled, '{}') AS cancelled_periods,
           coalesce(m.duplicate, '{}') AS duplicate_periods,
           coalesce(m.refused, '{}') AS refused_periods,
           coalesce(m.too_late, '{}') AS cancellation_refused_periods
      FROM registry.decisions d
      LEFT JOIN LATERAL (
          SELECT array_agg(DISTINCT period) FILTER (WHERE what = 'booked') AS booked,
                 array_agg(DISTINCT period) FILTER (WHERE what = 'held') AS held,
                 array_agg(DISTINCT period) FILTER (WHERE what IN ('cancelled', 'stopped'))
                     AS cancelled,
                 array_agg(DISTINCT period) FILTER (WHERE what = 'duplicate') AS duplicate,
                 array_agg(DISTINCT period) FILTER (WHERE what = 'refused') AS refused,
                 array_agg(DISTINCT period) FILTER (WHERE what = 'too_late') AS too_late
            FROM finance.registration_months rm
           WHERE rm.event_id = d.event_id) m ON true
)
SELECT o.*,
       CASE WHEN o.decision = 'rejected' THEN 'rejected'
            WHEN o.event_type = 'deregistered' AND cardinality(o.cancelled_periods) > 0
                 THEN 'cancelled'
            WHEN o.event_type = 'deregistered' AND cardinality(o.cancellation_refused_periods) > 0
                 THEN 'refused'
            WHEN cardinality(o.held_periods) > 0 THEN 'held'
            WHEN cardinality(o.booked_periods) > 0 THEN 'booked'
            WHEN cardinality(o.cancelled_periods) > 0 THEN 'cancelled'
            WHEN cardinality(o.duplicate_periods) + cardinality(o.refused_periods) > 0
                 THEN 'refused'
            ELSE 'accepted' END AS status,
       -- nothing more will happen by itself: decided and either nothing to book or the
       -- ledger has something for it (held months may still be booked by a budget raise)
       (o.decision = 'rejected' OR cardinality(o.schedule_ids) = 0
        OR cardinality(o.booked_periods) + cardinality(o.held_periods)
           + cardinality(o.cancelled_periods) + cardinality(o.duplicate_periods)
           + cardinality(o.refused_periods) + cardinality(o.cancellation_refused_periods) > 0)
           AS final
  FROM outcome o;
GRANT SELECT ON finance.registration_outcomes TO iuran_ledger_writer, iuran_finance;
