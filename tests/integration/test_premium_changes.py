"""A premium that changes while the services run, on a real PostgreSQL ledger and the running
stack: the ledger records the configured rates (dated) when it starts; contributions refused
because the validator and the ledger disagreed on the premium are booked by an operator
command once the ledger runs with the same configuration."""

from __future__ import annotations

from collections.abc import Awaitable, Iterator
from pathlib import Path

import asyncpg
import pytest

from services.domain.programme import Programme, load_programme
from services.ledger import book
from services.ledger.budget import ensure_allocation
from services.ledger.premiums import record_premium_rates
from services.runtime.settings import Settings
from services.runtime.stack import ServiceProcesses
from services.validator.process import Source, decide_message, read_message
from services.validator.registry import decide_batch
from tests.support.cli import Run, cli_with, on_db
from tests.support.workers import as_message, registration

pytestmark = pytest.mark.integration



async def test_the_ledger_records_the_configured_rates_when_it_starts(
    stack: ServiceProcesses, db: asyncpg.Pool
) -> None:
    rows = await db.fetch("SELECT effective_from, monthly_idr, jkk_idr, jkm_idr "
                          "FROM finance.premium_rates WHERE programme = 'malang-2025'")
    assert [tuple(r) for r in rows] == [("2025-09", 16_800, 10_000, 6_800)]


@pytest.fixture
def raised(tmp_path: Path) -> Path:
    """A programme directory whose malang-2025 pays a higher JKM (Rp7,800) from the start."""
    source = Settings().programmes_dir
    folder = tmp_path / "programmes"
    folder.mkdir()
    text = (source / "malang-2025.toml").read_text(encoding="utf-8")
    assert "jkm_flat_idr = 6_800" in text
    (folder / "malang-2025.toml").write_text(text.replace("jkm_flat_idr = 6_800",
                                                          "jkm_flat_idr = 7_800"))
    (tmp_path / "calendar").symlink_to(source.parent / "calendar")
    return folder


@pytest.fixture
def cli(ledger_url: str, raised: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> Iterator[Run]:
    with cli_with(monkeypatch, capsys, IURAN_DATABASE_URL=ledger_url,
                  IURAN_PROGRAMMES_DIR=str(raised)) as run:
        yield run




def ledger_started_with(connection: asyncpg.Connection,
                        programme: Programme) -> Awaitable[object]:
    async def start() -> None:
        await ensure_allocation(connection, programme)
        await record_premium_rates(connection, programme)
    return start()


def test_months_refused_for_a_premium_the_ledger_did_not_know_are_replayed(
    cli: Run, ledger_url: str, malang: Programme, raised: Path
) -> None:
    new = load_programme(raised / "malang-2025.toml")
    assert new.premium.monthly_idr == 17_800
    events = [registration() for _ in range(2)]
    niks = [e.worker.nik for e in events]

    async def skewed(connection: asyncpg.Connection) -> dict[str, int]:
        # the ledger still runs on the old premium, the validator already on the new one
        await ledger_started_with(connection, malang)
        batch = [read_message(*as_message(e), Source("iuran.registrations.v1", 0, i))
                 for i, e in enumerate(events)]
        outcomes = await decide_batch(connection, batch,
                                      lambda i, s: decide_message(i, s, {new.id: new}))
        schedules = [s for o in outcomes for s in o.schedules]
        assert {c.amount_idr for s in schedules for c in s.contributions} == {17_800}
        result = await book.book_schedules(connection, schedules)
        return dict(result.refused_reasons)
    assert on_db(ledger_url, skewed) == {"amount_not_programme_premium": 24}

    code, out, err = cli("contribution", "replay-refused", "--programme", "malang-2025")
    assert code == 2 and out == ""
    assert "restart the ledger with this configuration" in err.splitlines()[-1]

    on_db(ledger_url, lambda connection: ledger_started_with(connection, new))
    code, out, _ = cli("contribution", "replay-refused", "--programme", "malang-2025")
    assert code == 0
    assert "2 refused schedule(s) replayed: 24 contribution(s) booked, 0 held, 0 schedule(s) " \
           "still refused" in out

    async def booked(connection: asyncpg.Connection) -> tuple[object, ...]:
        return tuple(await connection.fetchrow(
            "SELECT count(*), sum(amount_idr), count(DISTINCT category) "
            "FROM finance.contributions WHERE nik = ANY($1::text[])", niks))
    assert on_db(ledger_url, booked) == (24, 24 * 17_800, 1)
    code, out, _ = cli("contribution", "replay-refused", "--programme", "malang-2025")
    assert code == 0 and "0 refused schedule(s) replayed" in out
