-- Coverage as the ledger holds it, summed in the transaction that books it. The projector
-- and the read API compute every coverage figure from these tables (and nothing else),
-- so each figure equals what the ledger holds the moment a booking commits, whatever
-- process reads it.
--
-- A statement that books, holds, cancels or resolves contributions adds its rows' deltas
-- here (statement-level triggers over the transition tables, one upsert per group):
--   booked    +1 per contribution inserted into ledger.contributions,
--             -1 per cancellation of a booked one (ledger.cancellations);
--   held      +1 per contribution held (ledger.held_contributions, awaiting budget),
--             -1 when a hold is resolved (booked, cancelled while held, or a duplicate).
-- A refused duplicate is never booked nor held, so it never appears here.
--
-- coverage_months: per programme, month and (OPD, category, kecamatan). One active payer
--   per worker-month across all programmes (migration 007) makes booked_months the number
--   of distinct workers covered in that month, and their sum over programmes the number of
--   distinct workers covered in that month by any programme. `changes` only ever grows:
--   its sum is the change marker a reader polls (it moves in the same transaction).
-- coverage_workers: per programme, group ('total' | 'by_opd' | 'by_category' |
--   'by_kecamatan', and its key) and worker: that worker's months in the group. Four rows
--   per worker and programme; a reader never scans it. The NIK is kept as a number (16
--   digits, checked by the ledger's tables).
-- coverage_groups: per programme and group, the distinct workers with a booked month and
--   with a month awaiting budget, and the months and rupiah of each. A worker is counted
--   when its months in the group go from 0 to more, uncounted when they drop back to 0, so
--   the distinct counts are exact without a reader ever counting distinct NIKs: a read
--   costs the same with 3,000 or 3,000,000 contributions.

CREATE TABLE ledger.coverage_months (
    programme      text   NOT NULL,
    period         text   NOT NULL,
    opd_code       text   NOT NULL,
    category       text   NOT NULL,
    kecamatan      text   NOT NULL,
    booked_months  bigint NOT NULL DEFAULT 0,
    booked_idr     bigint NOT NULL DEFAULT 0,
    held_months    bigint NOT NULL DEFAULT 0,
    held_idr       bigint NOT NULL DEFAULT 0,
    changes        bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (programme, period, opd_code, category, kecamatan)
);

CREATE TABLE ledger.coverage_workers (
    programme      text   NOT NULL,
    dimension      text   NOT NULL,
    key            text   NOT NULL,
    nik            bigint NOT NULL,
    booked_months  bigint NOT NULL DEFAULT 0,
    held_months    bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (programme, dimension, key, nik)
);

CREATE TABLE ledger.coverage_groups (
    programme                      text   NOT NULL,
    dimension                      text   NOT NULL
        CHECK (dimension IN ('total', 'by_opd', 'by_category', 'by_kecamatan')),
    key                            text   NOT NULL,
    active_workers                 bigint NOT NULL DEFAULT 0,
    contributions_booked           bigint NOT NULL DEFAULT 0,
    booked_idr                     bigint NOT NULL DEFAULT 0,
    awaiting_budget_workers        bigint NOT NULL DEFAULT 0,
    awaiting_budget_contributions  bigint NOT NULL DEFAULT 0,
    awaiting_budget_idr            bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (programme, dimension, key)
);

-- Applies the deltas of one statement. The query that yields them depends on the table;
-- EXECUTE plans it at every call (see 006: a cached plan of a small first batch is slow on
-- a large one). Rows are upserted in key order, so two ledger processes take the row locks
-- in the same order.
CREATE FUNCTION ledger.track_coverage() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    deltas text;
BEGIN
    deltas := CASE TG_TABLE_NAME
        WHEN 'contributions' THEN
            $d$SELECT programme, period, nik, opd_code, category, kecamatan,
                      1 AS booked, amount_idr AS booked_idr, 0 AS held, 0::bigint AS held_idr
                 FROM changed$d$
        WHEN 'cancellations' THEN
            $d$SELECT c.programme, c.period, c.nik, c.opd_code, c.category, c.kecamatan,
                      -1, -c.amount_idr, 0, 0::bigint
                 FROM changed x JOIN ledger.contributions c USING (contribution_id)$d$
        WHEN 'held_contributions' THEN
            $d$SELECT programme, period, nik, opd_code, category, kecamatan,
                      0, 0::bigint, 1, amount_idr
                 FROM changed$d$
        WHEN 'held_resolutions' THEN
            $d$SELECT h.programme, h.period, h.nik, h.opd_code, h.category, h.kecamatan,
                      0, 0::bigint, -1, -h.amount_idr
                 FROM changed r JOIN ledger.held_contributions h USING (contribution_id)$d$
    END;
    EXECUTE format($sql$
        WITH d (programme, period, nik, opd_code, category, kecamatan,
                booked, booked_idr, held, held_idr) AS (%s),
        months AS (
            INSERT INTO ledger.coverage_months AS m
                   (programme, period, opd_code, category, kecamatan,
                    booked_months, booked_idr, held_months, held_idr, changes)
            SELECT programme, period, opd_code, category, kecamatan,
                   sum(booked), sum(booked_idr), sum(held), sum(held_idr), count(*)
              FROM d GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2, 3, 4, 5
            ON CONFLICT (programme, period, opd_code, category, kecamatan) DO UPDATE
               SET booked_months = m.booked_months + EXCLUDED.booked_months,
                   booked_idr = m.booked_idr + EXCLUDED.booked_idr,
                   held_months = m.held_months + EXCLUDED.held_months,
                   held_idr = m.held_idr + EXCLUDED.held_idr,
                   changes = m.changes + EXCLUDED.changes
            RETURNING 1
        ), g AS (
            SELECT d.programme, x.dimension, x.key, d.nik::bigint AS nik,
                   sum(d.booked) AS booked, sum(d.booked_idr) AS booked_idr,
                   sum(d.held) AS held, sum(d.held_idr) AS held_idr
              FROM d CROSS JOIN LATERAL (VALUES ('total', ''), ('by_opd', d.opd_code),
                                                ('by_category', d.category),
                                                ('by_kecamatan', d.kecamatan)) x (dimension, key)
             GROUP BY 1, 2, 3, 4
        ), workers AS (
            INSERT INTO ledger.coverage_workers AS w
                   (programme, dimension, key, nik, booked_months, held_months)
            SELECT programme, dimension, key, nik, booked, held FROM g ORDER BY 1, 2, 3, 4
            ON CONFLICT (programme, dimension, key, nik) DO UPDATE
               SET booked_months = w.booked_months + EXCLUDED.booked_months,
                   held_months = w.held_months + EXCLUDED.held_months
            RETURNING w.programme, w.dimension, w.key, w.nik, w.booked_months, w.held_months
        )
        INSERT INTO ledger.coverage_groups AS t
               (programme, dimension, key, active_workers, contributions_booked, booked_idr,
                awaiting_budget_workers, awaiting_budget_contributions, awaiting_budget_idr)
        SELECT g.programme, g.dimension, g.key,
               -- now minus before: +1 when the worker's months went from 0 to more, -1 back
               sum((w.booked_months > 0)::int - (w.booked_months - g.booked > 0)::int),
               sum(g.booked), sum(g.booked_idr),
               sum((w.held_months > 0)::int - (w.held_months - g.held > 0)::int),
               sum(g.held), sum(g.held_idr)
          FROM g JOIN workers w USING (programme, dimension, key, nik)
         GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
        ON CONFLICT (programme, dimension, key) DO UPDATE
           SET active_workers = t.active_workers + EXCLUDED.active_workers,
               contributions_booked = t.contributions_booked + EXCLUDED.contributions_booked,
               booked_idr = t.booked_idr + EXCLUDED.booked_idr,
               awaiting_budget_workers = t.awaiting_budget_workers
                                         + EXCLUDED.awaiting_budget_workers,
               awaiting_budget_contributions = t.awaiting_budget_contributions
                                               + EXCLUDED.awaiting_budget_contributions,
               awaiting_budget_idr = t.awaiting_budget_idr + EXCLUDED.awaiting_budget_idr
    $sql$, deltas);
    RETURN NULL;
END;
$$;
REVOKE ALL ON FUNCTION ledger.track_coverage() FROM PUBLIC;

-- No booking may commit between the triggers' creation and the backfill below.
LOCK TABLE ledger.contributions, ledger.cancellations, ledger.held_contributions,
           ledger.held_resolutions IN SHARE ROW EXCLUSIVE MODE;

CREATE TRIGGER contributions_track_coverage AFTER INSERT ON ledger.contributions
    REFERENCING NEW TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION ledger.track_coverage();
CREATE TRIGGER cancellations_track_coverage AFTER INSERT ON ledger.cancellations
    REFERENCING NEW TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION ledger.track_coverage();
CREATE TRIGGER held_track_coverage AFTER INSERT ON ledger.held_contributions
    REFERENCING NEW TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION ledger.track_coverage();
CREATE TRIGGER held_resolutions_track_coverage AFTER INSERT ON ledger.held_resolutions
    REFERENCING NEW TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION ledger.track_coverage();

-- What the ledger held before this migration.
CREATE TEMP TABLE coverage_backfill ON COMMIT DROP AS
SELECT c.programme, c.period, c.nik, c.opd_code, c.category, c.kecamatan,
       1 AS booked, c.amount_idr AS booked_idr, 0 AS held, 0::bigint AS held_idr
  FROM ledger.contributions c
 WHERE NOT EXISTS (SELECT 1 FROM ledger.cancellations x
                    WHERE x.contribution_id = c.contribution_id)
UNION ALL
SELECT h.programme, h.period, h.nik, h.opd_code, h.category, h.kecamatan,
       0, 0::bigint, 1, h.amount_idr
  FROM ledger.held_contributions h
 WHERE NOT EXISTS (SELECT 1 FROM ledger.held_resolutions r
                    WHERE r.contribution_id = h.contribution_id);

INSERT INTO ledger.coverage_months (programme, period, opd_code, category, kecamatan,
                                    booked_months, booked_idr, held_months, held_idr, changes)
SELECT programme, period, opd_code, category, kecamatan,
       sum(booked), sum(booked_idr), sum(held), sum(held_idr), count(*)
  FROM coverage_backfill GROUP BY 1, 2, 3, 4, 5;

CREATE TEMP TABLE coverage_backfill_groups ON COMMIT DROP AS
SELECT b.programme, x.dimension, x.key, b.nik::bigint AS nik,
       sum(b.booked) AS booked, sum(b.booked_idr) AS booked_idr,
       sum(b.held) AS held, sum(b.held_idr) AS held_idr
  FROM coverage_backfill b
 CROSS JOIN LATERAL (VALUES ('total', ''), ('by_opd', b.opd_code), ('by_category', b.category),
                            ('by_kecamatan', b.kecamatan)) x (dimension, key)
 GROUP BY 1, 2, 3, 4;

INSERT INTO ledger.coverage_workers (programme, dimension, key, nik, booked_months,
                                     held_months)
SELECT programme, dimension, key, nik, booked, held FROM coverage_backfill_groups;

INSERT INTO ledger.coverage_groups (programme, dimension, key, active_workers,
                                    contributions_booked, booked_idr, awaiting_budget_workers,
                                    awaiting_budget_contributions, awaiting_budget_idr)
SELECT programme, dimension, key, count(*) FILTER (WHERE booked > 0), sum(booked),
       sum(booked_idr), count(*) FILTER (WHERE held > 0), sum(held), sum(held_idr)
  FROM coverage_backfill_groups GROUP BY 1, 2, 3;
