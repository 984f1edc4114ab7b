"""Deterministic synthetic registrations: the Malang batch of 25,808 workers as reported in
Nov 2025 (category mix, staged cohorts from September, Kemendagri kecamatan codes)."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import date, datetime, time, timedelta

from schemas.events import Category, Worker, WorkerRegistered
from services.domain.nik import encode_nik
from services.domain.programme import Programme
from services.domain.schedule import derived_id

BATCH = 25_808

# Kemendagri kecamatan codes of Kota Malang (35.73.xx; BPS numbers them differently).
DISTRICT_OF = {
    "Blimbing": "01", "Klojen": "02", "Kedungkandang": "03", "Sukun": "04", "Lowokwaru": "05",
}
# One worker in OUTSIDE_EVERY lives in the city with a NIK issued in Kabupaten Malang
# (35.07, kecamatan Singosari and Lawang): the region digits never change with a move.
OUTSIDE_EVERY = 50
OUTSIDE_PREFIXES = (("07", "24"), ("07", "25"))
# The batch as reported locally (Nov 2025): who, how many, the OPD that registered them
# (None: the kecamatan office of the worker's kecamatan). The sources give no category for
# the education staff, cemetery workers and kecamatan registrations: bpu_lainnya.
CATEGORY_MIX: tuple[tuple[Category, int, str | None], ...] = (
    (Category.OJEK_ONLINE, 7_711, "DISHUB"),
    (Category.UMKM, 5_615, "DISKOPINDAG"),
    (Category.SOPIR_ANGKOT, 2_495, "DISHUB"),
    (Category.KELOMPOK_TANI, 2_084, "DISPANGTAN"),
    (Category.BPU_LAINNYA, 831, "DISNAKER"),  # non-civil-servant education staff
    (Category.BPU_LAINNYA, 144, "DISNAKER"),  # cemetery workers
    (Category.BPU_LAINNYA, BATCH - 18_880, None),  # 6,928 through the kecamatan offices
)
# Registration was staged: (first covered month, workers, when they were registered).
# 15,000 were enrolled by 1 November, all of them by 25 November; every cohort is covered
# in 2025-12.
# (coverage start, workers, the day they were registered, at 09:00 programme time)
COHORTS: tuple[tuple[str, int, date], ...] = (
    ("2025-09", 7_000, date(2025, 9, 1)),
    ("2025-10", 8_000, date(2025, 10, 1)),
    ("2025-11", 5_000, date(2025, 11, 3)),
    ("2025-12", BATCH - 20_000, date(2025, 11, 25)),
)
REGISTERED_AT = time(9, 0)
FIRST_NAMES = ("Agus", "Budi", "Dwi", "Eko", "Hadi", "Joko", "Slamet", "Wahyu", "Yusuf", "Rudi",
               "Siti", "Sri", "Dewi", "Rina", "Nur", "Lestari", "Wulan", "Ani", "Ratna", "Yuli")
LAST_NAMES = ("Santoso", "Wibowo", "Setiawan", "Prasetyo", "Hidayat", "Susanto", "Rahayu",
              "Handayani", "Purnomo", "Kurniawan", "Saputra", "Wijaya", "Utami", "Lestari")


def _mobile_prefix(drawn: int) -> int:
    """A two-digit prefix after 08 of a real Indonesian mobile range, from one in 11..98
    (no operator uses 084x)."""
    return drawn + 10 if 40 <= drawn < 50 else drawn


def _shuffled(sizes: list[int], seed: int) -> list[int]:
    """BATCH slots, ``sizes[k]`` of them labelled k, in a fixed random order: worker i takes
    slot i % BATCH, so a batch of BATCH workers has the exact mix and any prefix about it."""
    slots = [label for label, size in enumerate(sizes) for _ in range(size)]
    random.Random(seed).shuffle(slots)  # noqa: S311 - synthetic data, not security
    return slots


def demo_registrations(
    programme: Programme, count: int, *, seed: int = 2025, namespace: str = "demo"
) -> Iterator[WorkerRegistered]:
    """``count`` valid registrations; the same arguments always give the same events, and a
    shorter batch is the start of a longer one."""
    rng = random.Random(seed)  # noqa: S311 - synthetic data, not security
    kecamatan = sorted(programme.kecamatan)
    groups = _shuffled([size for _, size, _ in CATEGORY_MIX], seed)
    cohorts = _shuffled([size for _, size, _ in COHORTS], seed + 1)
    serials: dict[str, int] = {}
    for index in range(count):
        district_name = kecamatan[index % len(kecamatan)]
        category, _, opd = CATEGORY_MIX[groups[index % BATCH]]
        start, _, registered_at = COHORTS[cohorts[index % BATCH]]
        opd = opd or f"KEC_{district_name.upper()}"
        sex = "F" if rng.random() < 0.38 else "M"
        born = date(1962, 1, 1) + timedelta(days=rng.randrange(0, 365 * 44))
        regency, district = ("73", DISTRICT_OF[district_name])
        if index % OUTSIDE_EVERY == OUTSIDE_EVERY - 1:
            regency, district = OUTSIDE_PREFIXES[index // OUTSIDE_EVERY % len(OUTSIDE_PREFIXES)]
        prefix = f"35{regency}{district}{born:%d%m%y}{sex}"
        serials[prefix] = serials.get(prefix, 0) + 1
        nik = encode_nik("35", regency, district, born, sex, serials[prefix])
        first = rng.choice(FIRST_NAMES[10:] if sex == "F" else FIRST_NAMES[:10])
        worker = Worker(
            nik=nik,
            full_name=f"{first} {rng.choice(LAST_NAMES)}",
            birth_date=born,
            sex=sex,  # type: ignore[arg-type]
            category=category,
            kecamatan=district_name,
            kelurahan=rng.choice(programme.kecamatan[district_name]),
            phone=f"08{_mobile_prefix(rng.randrange(11, 99))}"
                  f"{rng.randrange(10_000_000, 99_999_999)}",
        )
        yield WorkerRegistered(
            event_id=derived_id(namespace, programme.id, nik),
            event_type="registered",
            occurred_at=datetime.combine(registered_at, REGISTERED_AT, programme.zone),
            opd_code=opd if opd in programme.opds else next(iter(programme.opds)),
            programme=programme.id,
            worker=worker,
            coverage_start=max(start, programme.first_period),
            months=programme.months,
        )
