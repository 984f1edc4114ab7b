"""What the API reads about an OPD's own workers: a summary per worker and programme
(status, months, the name the OPD last sent), the worker's months and this OPD's events for
the worker. Only the months the OPD enrolled are read, so another OPD's worker is absent."""

from __future__ import annotations

from typing import Any, Literal

import asyncpg

WorkerStatus = Literal["active", "held", "stopped"]
STATUS_SQL = """CASE WHEN active_months > 0 THEN 'active' WHEN held_months > 0 THEN 'held'
                     ELSE 'stopped' END"""
_SUMMARY = f"""
SELECT w.*, {STATUS_SQL} AS status, n.full_name, b.status AS bpjs_status,
       b.kpj AS bpjs_kpj, b.effective_period AS bpjs_effective_period,
       b.reason_code AS bpjs_reason_code, b.reason AS bpjs_reason
  FROM (SELECT c.nik, c.programme,
               (array_agg(c.category ORDER BY c.period DESC))[1] AS category,
               (array_agg(c.kecamatan ORDER BY c.period DESC))[1] AS kecamatan,
               count(*) FILTER (WHERE c.status IN ('booked', 'billed', 'paid')) AS active_months,
               count(*) FILTER (WHERE c.status = 'held') AS held_months,
               count(*) FILTER (WHERE c.status = 'cancelled') AS cancelled_months,
               min(c.period) FILTER (WHERE c.status IN ('booked', 'billed', 'paid'))
                   AS first_period,
               max(c.period) FILTER (WHERE c.status IN ('booked', 'billed', 'paid'))
                   AS last_period
          FROM finance.contributions c
         WHERE c.opd_code = $1 AND ($2::text IS NULL OR c.programme = $2)
           AND ($3::text IS NULL OR c.kecamatan = $3) AND ($4::text IS NULL OR c.category = $4)
           AND ($5::text IS NULL OR c.nik = $5) AND ($6::text IS NULL OR c.nik > $6)
         GROUP BY c.nik, c.programme) w
  LEFT JOIN LATERAL (  -- the name as last corrected, else as last registered
        SELECT coalesce(
            (SELECT k.corrected ->> 'full_name' FROM registry.corrections k
              WHERE k.nik = w.nik AND k.programme = w.programme AND k.opd_code = $1
                AND k.corrected ? 'full_name'
              ORDER BY k.occurred_at DESC, k.recorded_at DESC LIMIT 1),
            (SELECT (r.event::jsonb) -> 'worker' ->> 'full_name'
               FROM registry.submission_rows r JOIN registry.submissions s USING (submission_id)
              WHERE r.nik = w.nik AND s.opd_code = $1 AND r.event_type = 'registered'
              ORDER BY s.submitted_at DESC LIMIT 1)) AS full_name) n ON true
  LEFT JOIN finance.bpjs_members b ON b.nik = w.nik AND b.programme = w.programme
 WHERE $7::text IS NULL OR {STATUS_SQL} = $7
 ORDER BY w.nik, w.programme"""
_MONTHS = """
SELECT programme, period, status, amount_idr, generation, funding_source
  FROM finance.contributions
 WHERE nik = $1 AND opd_code = $2 AND programme = $3
 ORDER BY period, generation"""
_EVENTS = """
SELECT event_id::text, event_type, status, decided_at
  FROM finance.registration_outcomes
 WHERE nik = $1 AND opd_code = $2 AND programme = $3 ORDER BY decided_at"""


async def summaries(pool: asyncpg.Pool, opd: str, *, programme: str | None = None,
                    kecamatan: str | None = None, category: str | None = None,
                    nik: str | None = None, after: str | None = None,
                    status: str | None = None, limit: int = 1) -> list[dict[str, Any]]:
    """The OPD's workers by NIK (after ``after``), one row per worker and programme."""
    rows = await pool.fetch(_SUMMARY + f" LIMIT {int(limit)}", opd, programme, kecamatan,
                            category, nik, after, status)
    return [dict(r) for r in rows]


async def months(pool: asyncpg.Pool, nik: str, opd: str, programme: str) -> list[asyncpg.Record]:
    """The worker's months in a programme that the OPD enrolled, by period and generation."""
    return list(await pool.fetch(_MONTHS, nik, opd, programme))


async def events(pool: asyncpg.Pool, nik: str, opd: str, programme: str) -> list[asyncpg.Record]:
    """This OPD's registration events for the worker and what became of them."""
    return list(await pool.fetch(_EVENTS, nik, opd, programme))
