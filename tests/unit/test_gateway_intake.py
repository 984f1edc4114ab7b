"""The gateway's reading of a submission (pure): the same row checks as `iuran publish`,
event ids stable per Idempotency-Key and row, claims of another OPD refused as a whole,
row limits saying which."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from services.adapters.tables import read_table_bytes
from services.api.auth import Principal
from services.api.intake import IntakeError, Limits, read_events, read_upload
from services.domain.programme import Programme, load_programmes
from services.domain.rows import plan_upload
from services.runtime.settings import Settings
from tests.support.gateway import template_csv, template_row
from tests.support.workers import deregistration, registration

DISHUB = Principal("dishub", frozenset({"opd"}), "DISHUB", frozenset({"malang-2025"}))
NOW = datetime(2025, 11, 25, 3, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def programmes() -> dict[str, Programme]:
    return load_programmes(Settings().programmes_dir)


def limits(key: str | None = None, max_rows: int = 100) -> Limits:
    return Limits(max_rows, NOW, key)


def test_upload_rows_are_checked_as_iuran_publish_checks_them(
    programmes: dict[str, Programme]
) -> None:
    good = registration(opd_code="DISHUB")
    body = template_csv([template_row(good), template_row(good, nik="12")])
    rows = read_upload(body, "csv", DISHUB, programmes["malang-2025"], limits())
    assert [(r.number, r.event is not None) for r in rows] == [(2, True), (3, False)]
    assert rows[1].nik == "12" and rows[1].errors[0].code == "invalid_nik"
    plan = plan_upload(read_table_bytes(body, "csv"), programmes["malang-2025"], "DISHUB",
                       today=date(2025, 11, 25), occurred_at=NOW)
    assert rows[0].event == plan.accepted[0].event  # without a key: the same event id


def test_event_ids_are_derived_from_the_idempotency_key_and_the_row(
    programmes: dict[str, Programme]
) -> None:
    body = template_csv([template_row(registration(opd_code="DISHUB")) for _ in range(3)])
    malang = programmes["malang-2025"]

    def ids(key: str) -> list[object]:
        return [r.event.event_id for r in read_upload(body, "csv", DISHUB, malang,
                                                      limits(key)) if r.event]

    assert ids("k-1") == ids("k-1")
    assert len(set(ids("k-1"))) == 3
    assert not set(ids("k-1")) & set(ids("k-2"))


def test_a_json_row_claiming_another_opd_refuses_the_request_naming_it(
    programmes: dict[str, Programme]
) -> None:
    events = [registration(opd_code="DISHUB"), registration(opd_code="DINSOS"),
              deregistration("3573010101900001", "2026-03", opd_code="dishub")]
    body = ("[" + ",".join(e.model_dump_json() for e in events) + "]").encode()
    with pytest.raises(IntakeError) as refused:
        read_events(body, DISHUB, programmes, limits())
    assert refused.value.status == 403
    assert refused.value.rows == [{"row": 2, "opd_code": "DINSOS", "programme": "malang-2025"}]


def test_json_rows_get_the_rules_and_the_duplicate_check(
    programmes: dict[str, Programme]
) -> None:
    same = registration(opd_code="DISHUB")
    body = ("[" + ",".join([same.model_dump_json(), same.model_dump_json(), '{"a": 1}']) +
            "]").encode()
    rows = read_events(body, DISHUB, programmes, limits())
    assert rows[0].event == same
    assert [e.code for e in rows[1].errors] == ["duplicate_in_file"]
    assert rows[2].event is None and rows[2].errors


@pytest.mark.parametrize(("body", "code"), [
    (b"{}", "not_an_array"), (b"[", "malformed_json"), (b"[]", "no_rows"),
    (b"[" + b",".join([b"{}"] * 101) + b"]", "too_many_rows"),
])
def test_a_json_body_that_is_no_list_of_rows_says_why(
    programmes: dict[str, Programme], body: bytes, code: str
) -> None:
    with pytest.raises(IntakeError) as refused:
        read_events(body, DISHUB, programmes, limits())
    assert (refused.value.status, refused.value.code) == (422, code)


def test_an_upload_over_the_row_limit_says_the_limit(programmes: dict[str, Programme]) -> None:
    body = template_csv([template_row(registration(opd_code="DISHUB")) for _ in range(4)])
    with pytest.raises(IntakeError, match="at most 3 per request") as refused:
        read_upload(body, "csv", DISHUB, programmes["malang-2025"], limits(max_rows=3))
    assert refused.value.code == "too_many_rows"
