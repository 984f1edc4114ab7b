"""A programme whose bills wait for BPJS (``[bpjs] bill_only_verified``) bills a month only
once BPJS verified the worker and from the first month BPJS covers (real PostgreSQL)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import asyncpg
import pytest

from schemas.events import BpjsVerification
from services.domain.programme import Billing, Bpjs, Programme
from services.ledger import book
from services.ledger.bills import issue_bill
from services.ledger.bpjs_verdicts import apply_verification
from services.ledger.budget import ensure_allocation
from tests.support.ledger import IN_FISCAL_2025, NikSource, programme_copy, schedule

pytestmark = pytest.mark.integration


def _verified(programme: str, nik: str, first: str) -> BpjsVerification:
    return BpjsVerification(
        verification_id=uuid.uuid4(), programme=programme, nik=nik, status="verified",
        kpj=f"25{nik[-9:]}", effective_period=first,
        verified_at=datetime(2025, 12, 5, tzinfo=UTC))


@pytest.mark.parametrize("waits", [True, False])
async def test_bills_wait_for_bpjs_when_the_programme_says_so(
    conn: asyncpg.Connection, malang: Programme, niks: NikSource, waits: bool
) -> None:
    programme = programme_copy(malang, budget_idr=100 * 16_800, billing=Billing()).model_copy(
        update={"bpjs": Bpjs(bill_only_verified=waits)})
    verified, later, unanswered = niks.take(3)
    await ensure_allocation(conn, programme)
    await book.book_schedules(conn, [schedule(programme, nik, ["2025-12"])
                                     for nik in (verified, later, unanswered)])
    await apply_verification(conn, _verified(programme.id, verified, "2025-12"))
    await apply_verification(conn, _verified(programme.id, later, "2026-01"))

    bill = await issue_bill(conn, programme, "2025-12", issued_by="test",
                            today=IN_FISCAL_2025)
    assert bill is not None
    billed = {r["nik"] for r in await conn.fetch(
        "SELECT nik FROM finance.contributions WHERE bill_id = $1", bill.bill_id)}
    assert billed == ({verified} if waits else {verified, later, unanswered})

    if waits:  # once BPJS verifies the worker, its month goes on the next bill
        await apply_verification(conn, _verified(programme.id, unanswered, "2025-12"))
        supplementary = await issue_bill(conn, programme, "2025-12", issued_by="test",
                                         today=IN_FISCAL_2025)
        assert supplementary is not None and supplementary.sequence == 2
        assert supplementary.lines == 1 and supplementary.amount_idr == 16_800
