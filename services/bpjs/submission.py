"""The collective-registration list BPJS takes: the workers a programme pays (a month held,
booked, billed or paid) that were not submitted yet and have no standing verdict (none, or a
rejection older than a registration sent again). Writing a submission records each worker
with a reference, so the next run lists only what is new."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date
from typing import Any

import asyncpg

from services.domain.nik import parse_nik

# Workers of the programme with a live month, their first live month and its JKK (declared
# income = JKK / 1 %), the personal data the OPD last sent through the gateway (when it
# did), and no submission since their latest verdict.
_CANDIDATES = """
WITH live AS (
    SELECT nik, programme, min(period) AS first_period,
           (array_agg(jkk_idr ORDER BY period))[1] AS jkk_idr,
           (array_agg(category ORDER BY period))[1] AS category,
           (array_agg(kecamatan ORDER BY period))[1] AS kecamatan,
           (array_agg(opd_code ORDER BY period))[1] AS opd_code
      FROM finance.contributions
     WHERE programme = $1 AND status IN ('held', 'booked', 'billed', 'paid')
     GROUP BY nik, programme),
latest AS (
    SELECT DISTINCT ON (nik) nik, status, received_at
      FROM ledger.bpjs_verifications WHERE programme = $1
     ORDER BY nik, verified_at DESC, seq DESC)
SELECT l.nik, l.first_period, l.jkk_idr, l.category, l.kecamatan, l.opd_code,
       w.worker ->> 'full_name' AS full_name, w.worker ->> 'birth_date' AS birth_date,
       w.worker ->> 'sex' AS sex, w.worker ->> 'kelurahan' AS kelurahan,
       w.worker ->> 'phone' AS phone
  FROM live l
  LEFT JOIN latest v ON v.nik = l.nik
  LEFT JOIN LATERAL (
        SELECT (r.event::jsonb) -> 'worker' AS worker
          FROM registry.submission_rows r JOIN registry.submissions s USING (submission_id)
         WHERE r.nik = l.nik AND r.event_type = 'registered' AND r.event IS NOT NULL
         ORDER BY s.submitted_at DESC LIMIT 1) w ON true
 WHERE (v.status IS NULL OR v.status = 'rejected')
   AND NOT EXISTS (
        SELECT 1 FROM ledger.bpjs_submission_rows r
          JOIN ledger.bpjs_submissions s USING (submission_id)
         WHERE r.programme = l.programme AND r.nik = l.nik
           AND (v.received_at IS NULL OR s.submitted_at > v.received_at))
 ORDER BY l.nik"""

# The occupation BPJS's form asks for, from the programme's category.
OCCUPATIONS = {
    "ojek_online": "Pengemudi Ojek Online",
    "buruh_pabrik": "Buruh Pabrik",
    "linmas": "Anggota Linmas",
    "sopir_angkot": "Sopir Angkutan Kota",
    "kelompok_tani": "Petani",
    "umkm": "Pelaku UMKM",
    "bpu_lainnya": "Pekerja Bukan Penerima Upah Lainnya",
}
PROGRAMMES = "JKK+JKM"
JKK_RATE_PERCENT = 1  # JKK is 1 % of the declared income (PP 44/2015)

# The columns of the file, as BPJS's collective-registration form names them.
HEADERS = ("NO REFERENSI", "NIK", "NAMA LENGKAP", "TANGGAL LAHIR", "JENIS KELAMIN",
           "KECAMATAN", "KELURAHAN", "NO HP", "JENIS PEKERJAAN", "PROGRAM",
           "PENGHASILAN", "MULAI KEPESERTAAN")


@dataclass(frozen=True)
class Submission:
    submission_id: uuid.UUID
    rows: list[tuple[Any, ...]]  # in the order of HEADERS


def _row(reference: str, r: asyncpg.Record, today: date) -> tuple[Any, ...]:
    birth, sex = r["birth_date"], r["sex"]
    if birth is None or sex is None:
        decoded = parse_nik(r["nik"], reference=today)  # the NIK carries both
        birth = birth or decoded.birth_date.isoformat()
        sex = sex or decoded.sex
    return (reference, r["nik"], r["full_name"] or "", birth, "L" if sex == "M" else "P",
            r["kecamatan"], r["kelurahan"] or "", r["phone"] or "",
            OCCUPATIONS.get(r["category"], r["category"]), PROGRAMMES,
            r["jkk_idr"] * 100 // JKK_RATE_PERCENT, r["first_period"])


async def candidates(connection: asyncpg.Connection, programme: str) -> list[asyncpg.Record]:
    return list(await connection.fetch(_CANDIDATES, programme))


async def submit(connection: asyncpg.Connection, programme: str, *, file_name: str,
                 submitted_by: str, today: date) -> Submission:
    """The rows of a new submission, recorded in one transaction (a reference per row)."""
    submission_id = uuid.uuid4()
    async with connection.transaction():
        # One submission at a time per programme: a worker is submitted once.
        await connection.execute("SELECT pg_advisory_xact_lock(hashtext('bpjs-submission:' "
                                 "|| $1::text))", programme)
        found = await candidates(connection, programme)
        prefix = submission_id.hex[:8].upper()
        rows = [_row(f"IUR-{prefix}-{n:05d}", r, today) for n, r in enumerate(found, 1)]
        await connection.execute(
            "INSERT INTO ledger.bpjs_submissions (submission_id, programme, file_name, "
            "row_count, submitted_by) VALUES ($1, $2, $3, $4, $5)",
            submission_id, programme, file_name, len(rows), submitted_by)
        if rows:
            await connection.execute(
                "INSERT INTO ledger.bpjs_submission_rows (submission_id, reference, "
                "programme, nik, first_period) SELECT $1, r, $2, n, p "
                "FROM unnest($3::text[], $4::text[], $5::text[]) AS x (r, n, p)",
                submission_id, programme, [row[0] for row in rows], [row[1] for row in rows],
                [row[-1] for row in rows])
    return Submission(submission_id, rows)
