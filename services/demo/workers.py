"""Deterministic synthetic registrations across the categories and the five kecamatan."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import date, datetime, timedelta, timezone

from schemas.events import Category, Worker, WorkerRegistered
from services.domain.nik import encode_nik
from services.domain.programme import Programme
from services.domain.schedule import derived_id

WIB = timezone(timedelta(hours=7))
REGISTERED_AT = datetime(2025, 11, 25, 9, 0, tzinfo=WIB)

# Dukcapil district codes of Kota Malang (35.73.xx).
DISTRICT_OF = {
    "Kedungkandang": "01", "Sukun": "02", "Klojen": "03", "Blimbing": "04", "Lowokwaru": "05",
}
# Share of each category in the batch, and the OPD that finds such workers.
CATEGORY_MIX = (
    (Category.OJEK_ONLINE, 0.24, "DISHUB"),
    (Category.BURUH_PABRIK, 0.22, "DISNAKER"),
    (Category.LINMAS, 0.12, "SATPOLPP"),
    (Category.SOPIR_ANGKOT, 0.06, "DISHUB"),
    (Category.KELOMPOK_TANI, 0.08, "DISPANGTAN"),
    (Category.UMKM, 0.16, "DISKOPINDAG"),
    (Category.BPU_LAINNYA, 0.12, "DINSOS"),
)
FIRST_NAMES = ("Agus", "Budi", "Dwi", "Eko", "Hadi", "Joko", "Slamet", "Wahyu", "Yusuf", "Rudi",
               "Siti", "Sri", "Dewi", "Rina", "Nur", "Lestari", "Wulan", "Ani", "Ratna", "Yuli")
LAST_NAMES = ("Santoso", "Wibowo", "Setiawan", "Prasetyo", "Hidayat", "Susanto", "Rahayu",
              "Handayani", "Purnomo", "Kurniawan", "Saputra", "Wijaya", "Utami", "Lestari")


def demo_registrations(
    programme: Programme, count: int, *, seed: int = 2025, namespace: str = "demo"
) -> Iterator[WorkerRegistered]:
    """``count`` valid registrations; the same arguments always give the same events."""
    rng = random.Random(seed)  # noqa: S311 - synthetic data, not security
    kecamatan = sorted(programme.kecamatan)
    categories = [c for c, _, _ in CATEGORY_MIX]
    weights = [w for _, w, _ in CATEGORY_MIX]
    opd_of = {c: opd for c, _, opd in CATEGORY_MIX}
    serials: dict[str, int] = {}
    for index in range(count):
        district_name = kecamatan[index % len(kecamatan)]
        category = rng.choices(categories, weights)[0]
        sex = "F" if rng.random() < 0.38 else "M"
        born = date(1962, 1, 1) + timedelta(days=rng.randrange(0, 365 * 44))
        prefix = f"3573{DISTRICT_OF.get(district_name, '01')}{born:%d%m%y}{sex}"
        serials[prefix] = serials.get(prefix, 0) + 1
        nik = encode_nik("35", "73", DISTRICT_OF.get(district_name, "01"), born, sex,
                         serials[prefix])
        first = rng.choice(FIRST_NAMES[10:] if sex == "F" else FIRST_NAMES[:10])
        worker = Worker(
            nik=nik,
            full_name=f"{first} {rng.choice(LAST_NAMES)}",
            birth_date=born,
            sex=sex,  # type: ignore[arg-type]
            category=category,
            kecamatan=district_name,
            kelurahan=rng.choice(programme.kecamatan[district_name]),
            phone=f"08{rng.randrange(11, 99)}{rng.randrange(10_000_000, 99_999_999)}",
        )
        yield WorkerRegistered(
            event_id=derived_id(namespace, programme.id, nik),
            event_type="registered",
            occurred_at=REGISTERED_AT,
            opd_code=opd_of[category] if opd_of[category] in programme.opds
            else next(iter(programme.opds)),
            programme=programme.id,
            worker=worker,
            coverage_start=programme.first_period,
            months=programme.months,
        )
