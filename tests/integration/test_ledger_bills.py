"""Monthly bills, payments, discrepancies, arrears and the database roles, on real
PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, date, datetime

import asyncpg
import pytest

from schemas.events import PaymentConfirmed
from services.domain.programme import Billing, Programme
from services.ledger import book
from services.ledger.bills import issue_bill
from services.ledger.budget import ensure_allocation
from services.ledger.payments import apply_payment, resolve_discrepancy
from services.ledger.report import finance_summary
from tests.support.ledger import IN_FISCAL_2025, NikSource, programme_copy, schedule

pytestmark = pytest.mark.integration

PREMIUM = 16_800
YEAR = ["2025-12", "2026-01", "2026-02", "2026-03", "2026-04", "2026-05",
        "2026-06", "2026-07", "2026-08", "2026-09", "2026-10", "2026-11"]


@pytest.fixture
async def programme(conn: asyncpg.Connection, malang: Programme) -> Programme:
    copy = programme_copy(malang, budget_idr=10**12, billing=Billing())
    await ensure_allocation(conn, copy)
    return copy


def payment(programme: Programme, period: str, amount: int, reference: str | None = None,
            payment_id: uuid.UUID | None = None) -> PaymentConfirmed:
    return PaymentConfirmed(
        payment_id=payment_id or uuid.uuid4(), programme=programme.id, period=period,
        amount_idr=amount, reference=reference or f"BPJS-{uuid.uuid4().hex[:10]}",
        paid_at=datetime(2025, 12, 12, 9, 30, tzinfo=UTC))


async def test_an_issued_bill_is_frozen_and_later_months_go_to_a_supplementary_bill(
    conn: asyncpg.Connection, programme: Programme, niks: NikSource
) -> None:
    await book.book_schedules(conn, [schedule(programme, n, YEAR[:2]) for n in niks.take(3)])
    first = await issue_bill(conn, programme, "2025-12", issued_by="test", today=IN_FISCAL_2025)
    assert first is not None
    assert (first.sequence, first.lines, first.amount_idr, first.due_date) == (
        1, 3, 3 * PREMIUM, date(2025, 12, 15))
    assert await issue_bill(conn, programme, "2025-12", issued_by="test",
                            today=IN_FISCAL_2025) is None

    late = niks.take(2)
    await book.book_schedules(conn, [schedule(programme, n, YEAR[:1]) for n in late])
    second = await issue_bill(conn, programme, "2025-12", issued_by="test", today=IN_FISCAL_2025)
    assert second is not None and (second.sequence, second.lines) == (2, 2)
    lines = await conn.fetch("SELECT c.nik FROM ledger.bill_lines l JOIN ledger.contributions c "
                             "USING (contribution_id) WHERE l.bill_id = $1", second.bill_id)
    assert sorted(r["nik"] for r in lines) == sorted(late)

    # the database refuses any change of an issued bill
    for sql in ("UPDATE ledger.bills SET amount_idr = 1 WHERE bill_id = $1",
                "DELETE FROM ledger.bills WHERE bill_id = $1",
                "UPDATE ledger.bill_lines SET amount_idr = 1 WHERE bill_id = $1",
                "DELETE FROM ledger.bill_lines WHERE bill_id = $1"):
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
            await conn.execute(sql, first.bill_id)
    extra = await conn.fetchval(
        """SELECT contribution_id FROM ledger.contributions c WHERE programme = $1
              AND period = '2026-01' LIMIT 1""", programme.id)
    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="frozen"):
        await conn.execute("INSERT INTO ledger.bill_lines VALUES ($1, $2, $3)",
                           extra, first.bill_id, PREMIUM)
    row = await conn.fetchrow("SELECT workers, amount_idr FROM finance.bills WHERE bill_id = $1",
                              first.bill_id)
    assert tuple(row) == (3, 3 * PREMIUM)

    # a billed month stays on its frozen bill; cancelled, its premium becomes a credit
    billed_nik = (await conn.fetchrow(
        "SELECT c.nik FROM ledger.bill_lines l JOIN ledger.contributions c "
        "USING (contribution_id) WHERE l.bill_id = $1 LIMIT 1", first.bill_id))["nik"]
    result = await book.book_schedules(
        conn, [schedule(programme, billed_nik, YEAR[:2], kind="cancelled")])
    assert result.credited[programme.id] == 1 and result.reversed[programme.id] == 2
    statuses = await conn.fetch("SELECT period, status FROM finance.contributions WHERE nik = $1 "
                                "ORDER BY period", billed_nik)
    assert [tuple(r) for r in statuses] == [("2025-12", "cancelled"), ("2026-01", "cancelled")]
    credits = await conn.fetch("SELECT period, bill_id, amount_idr, status FROM finance.credits "
                               "WHERE nik = $1", billed_nik)
    assert [tuple(r) for r in credits] == [("2025-12", first.bill_id, PREMIUM, "carried_over")]


async def test_a_matching_payment_settles_the_bill_once_even_when_replayed(
    ledger_url: str, conn: asyncpg.Connection, programme: Programme, niks: NikSource
) -> None:
    await book.book_schedules(conn, [schedule(programme, n, YEAR[:1]) for n in niks.take(4)])
    bill = await issue_bill(conn, programme, "2025-12", issued_by="test", today=IN_FISCAL_2025)
    assert bill is not None
    paid = payment(programme, "2025-12", bill.amount_idr, reference="BPJS-0001")

    a, b = [await asyncpg.connect(ledger_url) for _ in range(2)]
    try:  # the same confirmation delivered to two ledger processes at once, then again
        outcomes = await asyncio.gather(apply_payment(a, paid), apply_payment(b, paid))
        outcomes.append(await apply_payment(a, paid))
    finally:
        await a.close()
        await b.close()
    assert sorted(o.outcome for o in outcomes) == ["replayed", "replayed", "settled"]

    settlements = await conn.fetch(
        """SELECT t.debit_account, t.credit_account, t.amount_idr, t.reference
             FROM ledger.transfers t JOIN ledger.bill_lines l USING (contribution_id)
            WHERE l.bill_id = $1 AND t.kind = 'settlement'""", bill.bill_id)
    assert len(settlements) == 4
    assert {(s["debit_account"], s["credit_account"], s["amount_idr"], s["reference"])
            for s in settlements} == {(f"liability:bpjs_payable:{programme.id}",
                                       f"asset:unapplied:{programme.id}", PREMIUM,
                                       "BPJS-0001")}
    receipt = await conn.fetchrow(
        "SELECT debit_account, credit_account, amount_idr FROM ledger.transfers "
        "WHERE payment_id = $1 AND kind = 'receipt'", paid.payment_id)
    assert tuple(receipt) == (f"asset:unapplied:{programme.id}",
                              f"asset:cash:{programme.funding_source}", 4 * PREMIUM)
    assert await conn.fetchval("SELECT status FROM finance.bills WHERE bill_id = $1",
                               bill.bill_id) == "paid"
    budget = await conn.fetchrow("SELECT booked_idr, paid_idr FROM finance.budget_utilisation "
                                 "WHERE programme = $1", programme.id)
    assert tuple(budget) == (4 * PREMIUM, 4 * PREMIUM)
    balances = {r["account"]: r["balance_idr"] for r in await conn.fetch(
        "SELECT account, balance_idr FROM finance.account_balances")}
    assert balances[f"liability:bpjs_payable:{programme.id}"] == 0
    assert await conn.fetchval("SELECT sum(balance_idr) FROM finance.account_balances") == 0
    assert await conn.fetchval("SELECT count(*) FROM finance.discrepancies "
                               "WHERE programme = $1", programme.id) == 0


async def test_payments_that_do_not_match_become_discrepancies_never_applied(
    conn: asyncpg.Connection, programme: Programme, niks: NikSource
) -> None:
    await book.book_schedules(conn, [schedule(programme, n, YEAR[:2]) for n in niks.take(5)])
    bill = await issue_bill(conn, programme, "2025-12", issued_by="test", today=IN_FISCAL_2025)
    assert bill is not None and bill.amount_idr == 5 * PREMIUM

    partial = await apply_payment(conn, payment(programme, "2025-12", 3 * PREMIUM, "REF-A"))
    excess = await apply_payment(conn, payment(programme, "2025-12", 6 * PREMIUM, "REF-B"))
    unknown = await apply_payment(conn, payment(programme, "2026-01", 5 * PREMIUM, "REF-C"))
    reused = await apply_payment(conn, payment(programme, "2025-12", 5 * PREMIUM, "REF-A"))
    assert [(o.outcome, o.kind) for o in (partial, excess, unknown, reused)] == [
        ("discrepancy", "partial"), ("discrepancy", "excess"),
        ("discrepancy", "unknown_bill"), ("discrepancy", "duplicate_reference")]
    rows = await conn.fetch(
        """SELECT kind, expected_idr, paid_idr, difference_idr, reference, status
             FROM finance.discrepancies WHERE programme = $1 ORDER BY recorded_at""",
        programme.id)
    assert [tuple(r) for r in rows] == [
        ("partial", 5 * PREMIUM, 3 * PREMIUM, -2 * PREMIUM, "REF-A", "open"),
        ("excess", 5 * PREMIUM, 6 * PREMIUM, PREMIUM, "REF-B", "open"),
        ("unknown_bill", 0, 5 * PREMIUM, 5 * PREMIUM, "REF-C", "open"),
        ("duplicate_reference", 5 * PREMIUM, 5 * PREMIUM, 0, "REF-A", "open"),
    ]
    # nothing was settled: the bill is still open and no cash moved
    assert await conn.fetchval(
        "SELECT count(*) FROM ledger.transfers t JOIN ledger.contributions c "
        "USING (contribution_id) WHERE c.programme = $1 AND t.kind = 'settlement'",
        programme.id) == 0
    assert await conn.fetchval("SELECT status FROM finance.bills WHERE bill_id = $1",
                               bill.bill_id) == "past_due"

    # the right amount settles it; a second full payment is "already paid"
    assert (await apply_payment(conn, payment(programme, "2025-12", 5 * PREMIUM))).outcome \
        == "settled"
    twice = await apply_payment(conn, payment(programme, "2025-12", 5 * PREMIUM))
    assert (twice.outcome, twice.kind) == ("discrepancy", "already_paid")

    first = await conn.fetchval("SELECT discrepancy_id FROM finance.discrepancies "
                                "WHERE programme = $1 AND kind = 'partial'", programme.id)
    assert await resolve_discrepancy(conn, first, resolution="refund requested",
                                     resolved_by="bpkad", action="refund")
    assert await resolve_discrepancy(conn, first, resolution="again", resolved_by="x",
                                     action="refund") is None
    assert await conn.fetchval("SELECT status FROM finance.discrepancies "
                               "WHERE discrepancy_id = $1", first) == "resolved"


async def test_arrears_flag_three_unpaid_months_as_lapse_risk(
    conn: asyncpg.Connection, programme: Programme, niks: NikSource
) -> None:
    two, three = niks.take(2)
    await book.book_schedules(conn, [schedule(programme, two, YEAR[:2]),
                                     schedule(programme, three, YEAR[:3])])
    rows = await conn.fetch(
        """SELECT nik, unpaid_months, unpaid_idr, oldest_unpaid_period, latest_unpaid_period,
                  lapse_risk FROM finance.arrears WHERE nik = ANY($1::text[]) ORDER BY nik""",
        [two, three])
    # the demo programme's months are all past due by the test machine's clock (>= 2026-04)
    assert {r["nik"]: tuple(r)[1:] for r in rows} == {
        two: (2, 2 * PREMIUM, "2025-12", "2026-01", False),
        three: (3, 3 * PREMIUM, "2025-12", "2026-02", True),
    }
    history = await conn.fetch("SELECT event, period FROM finance.worker_history WHERE nik = $1 "
                               "ORDER BY period, event", three)
    assert [tuple(r) for r in history] == [("booked", p) for p in YEAR[:3]]


async def test_finance_summary_reports_the_first_bill_and_the_budget(
    conn: asyncpg.Connection, malang: Programme, niks: NikSource
) -> None:
    programme = programme_copy(malang, budget_idr=30 * PREMIUM)
    await ensure_allocation(conn, programme)
    await book.book_schedules(conn, [
        schedule(programme, n, YEAR, opd_code=opd)
        for n, opd in zip(niks.take(3), ("DISHUB", "DISHUB", "DINSOS"), strict=True)])
    summary = await finance_summary(conn, programme)
    assert summary["first_bill"] == {
        "period": "2025-12", "due_date": date(2025, 12, 15), "workers": 3,
        "amount_idr": 3 * PREMIUM, "jkk_idr": 30_000, "jkm_idr": 20_400, "billed_idr": 0,
        "paid_idr": 0,
        "by_opd": [{"opd_code": "DISHUB", "workers": 2, "amount_idr": 2 * PREMIUM},
                   {"opd_code": "DINSOS", "workers": 1, "amount_idr": PREMIUM}]}
    assert summary["budget"] == [{
        "funding_source": "DBHCHT", "fiscal_year": 2025, "allocated_idr": 30 * PREMIUM,
        "booked_idr": 30 * PREMIUM, "paid_idr": 0, "held_idr": 6 * PREMIUM,
        "held_contributions": 6, "remaining_idr": 0}]
    assert summary["contributions"] == {"booked": 30, "billed": 0, "paid": 0, "held": 6,
                                        "cancelled": 0}


async def test_the_finance_role_reads_views_and_cannot_write_anything(
    conn: asyncpg.Connection, programme: Programme, niks: NikSource
) -> None:
    await book.book_schedules(conn, [schedule(programme, niks.take()[0], YEAR[:1])])
    async with conn.transaction():
        await conn.execute("SET LOCAL ROLE iuran_finance")
        assert await conn.fetchval("SELECT count(*) FROM finance.contributions "
                                   "WHERE programme = $1", programme.id) == 1
    for sql in ("SELECT count(*) FROM ledger.contributions",
                "INSERT INTO ledger.payments VALUES (gen_random_uuid(), 'p', '2025-12', 1, 'r', "
                "now(), 'settled')",
                "DELETE FROM ledger.transfers",
                "CREATE TABLE finance.mine (x int)",
                "CREATE TABLE public.mine (x int)"):
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            async with conn.transaction():
                await conn.execute("SET LOCAL ROLE iuran_finance")
                await conn.execute(sql)


async def test_the_writer_role_books_but_cannot_delete_or_rewrite_the_journal(
    ledger_url: str, conn: asyncpg.Connection, programme: Programme, niks: NikSource
) -> None:
    writer = await asyncpg.connect(ledger_url)
    try:
        await writer.execute("SET ROLE iuran_ledger_writer")
        await book.prepare(writer)
        result = await book.book_schedules(writer, [schedule(programme, niks.take()[0],
                                                             YEAR[:2])])
        bill = await issue_bill(writer, programme, "2026-01", issued_by="writer",
                                today=IN_FISCAL_2025)
    finally:
        await writer.close()
    assert result.booked[programme.id] == 2
    assert bill is not None
    for sql in ("DELETE FROM ledger.transfers",
                "UPDATE ledger.contributions SET amount_idr = 1",
                "TRUNCATE ledger.contributions CASCADE",
                "UPDATE ledger.budget_allocations SET booked_idr = 0",
                "ALTER TABLE ledger.transfers DISABLE TRIGGER USER",
                "DROP TRIGGER transfers_append_only ON ledger.transfers"):
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            async with conn.transaction():
                await conn.execute("SET LOCAL ROLE iuran_ledger_writer")
                await conn.execute(sql)
    # The append-only triggers refuse those statements with the same error code even for a
    # role that holds the privilege: the privileges themselves are checked as well.
    granted = await conn.fetch(
        """SELECT c.relname, p.privilege
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            CROSS JOIN unnest(ARRAY['DELETE', 'TRUNCATE', 'UPDATE', 'REFERENCES', 'TRIGGER'])
                  AS p(privilege)
            WHERE n.nspname = 'ledger' AND c.relkind IN ('r', 'p')
              AND (has_table_privilege('iuran_ledger_writer', c.oid, p.privilege)
                   OR (p.privilege = 'UPDATE'
                       AND has_any_column_privilege('iuran_ledger_writer', c.oid, 'UPDATE')
                       AND c.relname NOT IN ('budget_allocations', 'outbox')))
            ORDER BY 1, 2""")
    assert [tuple(r) for r in granted] == [], "the writer role may rewrite the journal"
    # Two columns only: an allocation's amount (raised with a recorded change) and the
    # moment an outbox row was relayed (set once).
    for table, column in (("budget_allocations", "allocated_idr"), ("outbox", "published_at")):
        updatable = await conn.fetch(
            """SELECT attname FROM pg_attribute
                WHERE attrelid = ('ledger.' || $1)::regclass AND attnum > 0
                  AND NOT attisdropped
                  AND has_column_privilege('iuran_ledger_writer', attrelid, attnum, 'UPDATE')""",
            table)
        assert [r["attname"] for r in updatable] == [column]
    owned = await conn.fetch(
        """SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname IN ('ledger', 'finance')
              AND pg_has_role('iuran_ledger_writer', c.relowner, 'USAGE')""")
    assert [r["relname"] for r in owned] == [], "the writer role owns (may alter) tables"
