"""The programme's registration rules as an OPD and finance see them: which registrations
are paid, which are refused with which code, and that no worker is paid twice a month."""

from __future__ import annotations

import json
import re
import uuid
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.events import (
    Category,
    RejectionError,
    WorkerCorrected,
    WorkerDeregistered,
    WorkerRegistered,
    parse_registration,
)
from services.domain import errors as E
from services.domain.enrolment import (
    Decision,
    WorkerState,
    decide,
    decide_correction,
    decide_deregistration,
    decide_registration,
    describe_periods,
    empty_state,
)
from services.domain.nik import encode_nik
from services.domain.periods import period_from_index, period_index, period_range
from services.domain.places import normalise_phone
from services.domain.programme import Programme, load_programmes
from services.domain.schedule import (
    IURAN_NAMESPACE,
    contribution_id,
    contributions_for,
    covered_periods,
)
from services.validator.decode import decode_registration

REPO = Path(__file__).resolve().parents[2]
PROGRAMMES = load_programmes(REPO / "deploy" / "programmes")
MALANG = PROGRAMMES["malang-2025"]
TODAY = date(2025, 11, 26)
NIK = "3573014507900001"  # a woman born 5 July 1990
NAME = "Siti Aminah"
PHONE = "0856-7788-9911"
DROP = object()


def registration_json(**changes: Any) -> dict[str, Any]:
    """A valid registration, changed by ``field=value`` or ``worker__field=value``."""
    event: dict[str, Any] = {
        "event_id": str(uuid.uuid4()),
        "event_type": "registered",
        "occurred_at": "2025-11-25T09:30:00+07:00",
        "opd_code": "DISNAKER",
        "programme": "malang-2025",
        "worker": {
            "nik": NIK,
            "full_name": NAME,
            "birth_date": "1990-07-05",
            "sex": "F",
            "category": "ojek_online",
            "kecamatan": "Blimbing",
            "kelurahan": "Arjosari",
            "phone": PHONE,
        },
        "coverage_start": "2025-12",
        "months": 12,
    }
    for key, value in changes.items():
        target, name = (event["worker"], key[8:]) if key.startswith("worker__") else (event, key)
        if value is DROP:
            target.pop(name, None)
        else:
            target[name] = value
    return event


def registered(**changes: Any) -> WorkerRegistered:
    event = parse_registration(json.dumps(registration_json(**changes)))
    assert isinstance(event, WorkerRegistered)
    return event


def deregistered(**changes: Any) -> WorkerDeregistered:
    body = {
        "event_id": str(uuid.uuid4()),
        "event_type": "deregistered",
        "occurred_at": "2026-02-20T08:00:00+07:00",
        "opd_code": "DISPENDUKCAPIL",
        "programme": "malang-2025",
        "nik": NIK,
        "effective_period": "2026-03",
        "reason": "meninggal dunia",
    } | changes
    event = parse_registration(json.dumps(body))
    assert isinstance(event, WorkerDeregistered)
    return event


def assert_no_personal_data(errors: list[RejectionError]) -> None:
    for item in errors:
        for secret in (NIK, NAME, "Aminah", "7788", "85677889911"):
            assert secret not in item.message, (item.code, item.message)


def codes(errors: list[RejectionError]) -> list[str]:
    return [e.code for e in errors]


PROVINCE = MALANG.model_copy(
    update={
        "id": "jatim-2026",
        "name": "Program BPU Provinsi Jawa Timur 2026",
        "payer": "Pemerintah Provinsi Jawa Timur",
        "funding_source": "APBD-PROV",
        "opds": {"DISNAKERTRANS_JATIM": "Disnakertrans Provinsi Jawa Timur"},
    }
)

# Every code of the catalogue is exercised somewhere: in the tables below, in a named
# test here, or in the test file named for it (the upload tool's codes in test_publish, those
# the services set at the stream edge on the real processes), which must assert it.
TESTED_BY_NAMED_TESTS = {E.UNKNOWN_PROGRAMME, E.DUPLICATE_ENROLLMENT, E.NOT_ENROLLED,
                         E.EVENT_ALREADY_DECIDED,  # tests/unit/test_worker_state.py
                         E.NIK_BIRTH_DATE_MISMATCH, E.DEREGISTRATION_NOT_PERMITTED,
                         E.CORRECTION_NOT_PERMITTED,
                         E.PROGRAMME_CLOSED, E.EFFECTIVE_PERIOD_IN_PAST,
                         E.BACKDATING_REASON_REQUIRED, E.COVER_GAP}
TESTED_ELSEWHERE = {
    E.FORMULA_NOT_ALLOWED: ("tests/unit/test_publish.py", "E.FORMULA_NOT_ALLOWED"),
    E.WRONG_COLUMN_COUNT: ("tests/unit/test_publish.py", "E.WRONG_COLUMN_COUNT"),
    E.DUPLICATE_IN_FILE: ("tests/unit/test_publish.py", "E.DUPLICATE_IN_FILE"),
    E.EXAMPLE_ROW: ("tests/unit/test_publish.py", "E.EXAMPLE_ROW"),
    E.KEY_MISMATCH: ("tests/security/test_personal_data.py", '"key_mismatch"'),
    E.INTERNAL_ERROR: ("tests/integration/test_pipeline.py", '== ["internal_error"]'),
    E.MALFORMED_SCHEDULE: ("tests/integration/test_pipeline.py", '== ["malformed_schedule"]'),
}


# --- decoding: what a publisher in another language gets wrong --------------------------

def _raw(**changes: Any) -> bytes:
    return json.dumps(registration_json(**changes)).encode()


DECODING_CASES = [
    ("not json", b"NIK,nama\n3573014507900001,Siti Aminah", "", E.MALFORMED_JSON),
    ("a list", b"[]", "", E.MALFORMED_JSON),
    ("not utf-8", "{\"nama\": \"Siti Aminah\"}".encode("utf-16"), "", E.MALFORMED_JSON),
    ("empty value", None, "", E.MALFORMED_JSON),
    ("lone surrogate", '{"event_type": "\ud800"}', "", E.MALFORMED_JSON),
    ("huge", b"{\"x\": \"" + b"a" * 70_000 + b"\"}", "", E.MESSAGE_TOO_LARGE),
    ("no event_type", _raw(event_type=DROP), "event_type", E.MISSING_FIELD),
    ("no nik", _raw(worker__nik=DROP), "worker.nik", E.MISSING_FIELD),
    ("no worker", _raw(worker=DROP), "worker", E.MISSING_FIELD),
    ("worker not an object", _raw(worker=NIK), "worker", E.INVALID_FIELD),
    ("event type", _raw(event_type="updated"), "event_type", E.UNKNOWN_EVENT_TYPE),
    ("version 2", _raw(schema_version=2, months="x"), "schema_version",
     E.UNSUPPORTED_SCHEMA_VERSION),
    ("event id", _raw(event_id=NIK), "event_id", E.INVALID_EVENT_ID),
    ("no time zone", _raw(occurred_at="2025-11-25T09:30:00"), "occurred_at",
     E.INVALID_TIMESTAMP),
    ("period", _raw(coverage_start="12-2025"), "coverage_start", E.INVALID_PERIOD),
    ("months 0", _raw(months=0), "months", E.INVALID_MONTHS),
    ("months 13", _raw(months=13), "months", E.INVALID_MONTHS),
    ("months text", _raw(months="dua belas"), "months", E.INVALID_MONTHS),
    ("category", _raw(worker__category="petani"), "worker.category", E.UNKNOWN_CATEGORY),
    ("sex L", _raw(worker__sex="L"), "worker.sex", E.INVALID_SEX),
    ("30 February", _raw(worker__birth_date="1990-02-30"), "worker.birth_date",
     E.INVALID_DATE),
    ("day first", _raw(worker__birth_date="05/07/1990"), "worker.birth_date", E.INVALID_DATE),
    ("nik as number", _raw(worker__nik=int(NIK)), "worker.nik", E.INVALID_NIK),
    ("name too long", _raw(worker__full_name=NAME * 30), "worker.full_name", E.INVALID_NAME),
    ("phone too long", _raw(worker__phone=PHONE * 4), "worker.phone", E.INVALID_PHONE),
    ("empty kecamatan", _raw(worker__kecamatan=""), "worker.kecamatan", E.UNKNOWN_KECAMATAN),
    ("empty kelurahan", _raw(worker__kelurahan=""), "worker.kelurahan", E.UNKNOWN_KELURAHAN),
    ("empty opd", _raw(opd_code=""), "opd_code", E.UNKNOWN_OPD),
    ("long programme", _raw(programme="p" * 65), "programme", E.UNKNOWN_PROGRAMME),
    ("empty reason", json.dumps({**json.loads(_raw()), "event_type": "deregistered",
                                 "nik": NIK, "effective_period": "2026-01",
                                 "reason": ""}).encode(), "reason", E.INVALID_FIELD),
]


@pytest.mark.parametrize(
    ("raw", "field", "code"), [c[1:] for c in DECODING_CASES], ids=[c[0] for c in DECODING_CASES]
)
def test_an_undecodable_message_is_rejected_with_a_stable_code(
    raw: bytes | str | None, field: str, code: str
) -> None:
    event, errors = decode_registration(raw)
    assert event is None
    assert (field, code) in [(e.field, e.code) for e in errors]
    assert all(e.code in E.CATALOGUE for e in errors)
    assert_no_personal_data(errors)


def test_a_future_schema_version_is_reported_alone() -> None:
    _, errors = decode_registration(_raw(schema_version=2, months="x", worker__sex="L"))
    assert codes(errors) == [E.UNSUPPORTED_SCHEMA_VERSION]


def test_unknown_extra_fields_are_ignored_so_publishers_can_add_their_own() -> None:
    event, errors = decode_registration(_raw(source_system="SIPEKERJA", worker__rt="03"))
    assert errors == [] and isinstance(event, WorkerRegistered)


# --- the programme's rules ---------------------------------------------------------------

def _programme_with(**update: Any) -> Programme:
    return MALANG.model_copy(update=update)


ONLY_LINMAS = _programme_with(
    eligibility=MALANG.eligibility.model_copy(update={"categories": [Category.LINMAS]})
)
SIX_MONTHS = _programme_with(months=6)
WOMAN_1990 = "3573014507900001"
MAN_1990 = "3573010507900001"

RULE_CASES: list[tuple[str, dict[str, Any], Programme, str, str]] = [
    ("opd not in programme", {"opd_code": "DINKES"}, MALANG, "opd_code", E.UNKNOWN_OPD),
    ("nik too short", {"worker__nik": NIK[:15]}, MALANG, "worker.nik", E.INVALID_NIK),
    ("nik province", {"worker__nik": "10" + NIK[2:]}, MALANG, "worker.nik", E.INVALID_NIK),
    ("nik date", {"worker__nik": NIK[:6] + "7207" + NIK[10:]}, MALANG, "worker.nik",
     E.INVALID_NIK),
    ("nik serial", {"worker__nik": NIK[:12] + "0000"}, MALANG, "worker.nik", E.INVALID_NIK),
    ("nik regency", {"worker__nik": "3599" + NIK[4:]}, MALANG, "worker.nik",
     E.UNKNOWN_REGENCY_CODE),
    # Kota Malang has five kecamatan, 35.73.01-05: 06 was never one of them.
    ("nik kecamatan", {"worker__nik": "357306" + NIK[6:]}, MALANG, "worker.nik",
     E.UNKNOWN_KECAMATAN_CODE),
    ("sex differs", {"worker__sex": "M"}, MALANG, "worker.sex", E.NIK_SEX_MISMATCH),
    ("man's nik for a woman", {"worker__nik": MAN_1990}, MALANG, "worker.sex",
     E.NIK_SEX_MISMATCH),
    ("name with digits", {"worker__full_name": "Siti Aminah 2"}, MALANG, "worker.full_name",
     E.INVALID_NAME),
    ("name is a nik", {"worker__full_name": NIK}, MALANG, "worker.full_name", E.INVALID_NAME),
    ("blank name", {"worker__full_name": "   "}, MALANG, "worker.full_name", E.INVALID_NAME),
    ("foreign phone", {"worker__phone": "+1 555 123 4567"}, MALANG, "worker.phone",
     E.INVALID_PHONE),
    ("short phone", {"worker__phone": "08123"}, MALANG, "worker.phone", E.INVALID_PHONE),
    ("category not covered", {}, ONLY_LINMAS, "worker.category", E.CATEGORY_NOT_ELIGIBLE),
    ("kecamatan elsewhere", {"worker__kecamatan": "Batu"}, MALANG, "worker.kecamatan",
     E.UNKNOWN_KECAMATAN),
    ("kelurahan elsewhere", {"worker__kelurahan": "Dinoyo"}, MALANG, "worker.kelurahan",
     E.UNKNOWN_KELURAHAN),
    ("too young", {"worker__nik": "3573014507150001", "worker__birth_date": "2015-07-05"},
     MALANG, "worker.birth_date", E.AGE_OUT_OF_RANGE),
    ("too old", {"worker__nik": "3573014507500001", "worker__birth_date": "1950-07-05"},
     MALANG, "worker.birth_date", E.AGE_OUT_OF_RANGE),
    ("born in the future", {"worker__nik": "3573014512250001",
                            "worker__birth_date": "2025-12-05"}, MALANG,
     "worker.birth_date", E.INVALID_DATE),
    ("more months than the programme", {"months": 12}, SIX_MONTHS, "months", E.INVALID_MONTHS),
    ("before the programme", {"coverage_start": "2025-08"}, MALANG, "coverage_start",
     E.COVERAGE_BEFORE_PROGRAMME),
    ("after the programme", {"coverage_start": "2026-12"}, MALANG, "coverage_start",
     E.COVERAGE_AFTER_PROGRAMME),
]


@pytest.mark.parametrize(
    ("changes", "programme", "field", "code"),
    [c[1:] for c in RULE_CASES],
    ids=[c[0] for c in RULE_CASES],
)
def test_a_registration_that_breaks_a_rule_is_refused_and_nothing_is_paid(
    changes: dict[str, Any], programme: Programme, field: str, code: str
) -> None:
    decision = decide_registration(empty_state(), registered(**changes), programme, TODAY)
    assert decision.schedules == []
    assert (field, code) in [(e.field, e.code) for e in decision.errors]
    assert_no_personal_data(decision.errors)
    assert decision.state is not None and decision.state.enrollments == []


def test_a_registration_dated_after_the_window_or_the_fiscal_year_is_refused() -> None:
    late = decide_registration(empty_state(), registered(coverage_start="2026-06"), MALANG,
                               date(2026, 5, 20))
    assert late.schedules == [] and codes(late.errors) == [E.PROGRAMME_CLOSED]
    assert "fiscal year 2025" in late.errors[0].message
    assert decide_registration(empty_state(), registered(), MALANG, date(2025, 12, 31)).schedules
    window = MALANG.model_copy(update={"registration_closes_on": date(2025, 11, 25)})
    assert decide_registration(empty_state(), registered(), window, date(2025, 11, 25)).schedules
    closed = decide_registration(empty_state(), registered(), window, date(2025, 11, 26))
    assert codes(closed.errors) == [E.PROGRAMME_CLOSED] and "2025-11-25" in closed.errors[0].message


def test_cover_stops_from_the_current_month_unless_a_coordinator_documents_a_death() -> None:
    enrolled = decide_registration(empty_state(), registered(opd_code="DISHUB"), MALANG, TODAY)
    state = apply(empty_state(), enrolled)
    june = date(2026, 6, 1)
    own = decide_deregistration(state, deregistered(opd_code="DISHUB", effective_period="2026-02"),
                                MALANG, june)
    assert codes(own.errors) == [E.EFFECTIVE_PERIOD_IN_PAST] and own.schedules == []
    assert "(2026-06)" in own.errors[0].message
    from_now = deregistered(opd_code="DISHUB", effective_period="2026-06")
    assert decide_deregistration(state, from_now, MALANG, june).schedules
    bare = decide_deregistration(state, deregistered(effective_period="2026-03"), MALANG, june)
    assert codes(bare.errors) == [E.BACKDATING_REASON_REQUIRED] and bare.schedules == []
    died = {"reason_code": "deceased", "reason_date": "2026-02-14"}
    early = decide_deregistration(state, deregistered(effective_period="2026-02", **died),
                                  MALANG, june)
    assert codes(early.errors) == [E.EFFECTIVE_PERIOD_IN_PAST] and "2026-03" in (
        early.errors[0].message)
    stop = decide_deregistration(state, deregistered(effective_period="2026-03", **died),
                                 MALANG, june)
    assert stop.errors == [] and stop.schedules[0].contributions[0].period == "2026-03"


def test_an_unknown_programme_is_refused_and_names_the_known_ones() -> None:
    decision = decide(empty_state(), registered(programme="surabaya-2025"), PROGRAMMES, TODAY)
    assert codes(decision.errors) == [E.UNKNOWN_PROGRAMME]
    assert "malang-2025" in decision.errors[0].message
    typed_wrong = decide(empty_state(), registered(programme=f"{NAME} {PHONE}"), PROGRAMMES,
                         TODAY)
    assert_no_personal_data(typed_wrong.errors)
    replayed = decide(decision.state or empty_state(),
                      registered(event_id=str(decision_id(decision))), PROGRAMMES, TODAY)
    assert replayed.duplicate_event and replayed.errors == []


def decision_id(decision: Decision) -> str:
    assert decision.state is not None
    (event_id,) = decision.state.events
    return str(event_id)


def test_messages_tell_the_clerk_what_to_fix() -> None:
    errors = check(worker__kelurahan="Dinoyo")
    assert "kecamatan Lowokwaru" in errors[0].message  # where that kelurahan really is
    errors = check(worker__kecamatan="Batu")
    assert "Blimbing" in errors[0].message and "Sukun" in errors[0].message
    errors = check(coverage_start="2025-08")
    assert "2025-09" in errors[0].message
    errors = check(opd_code="DINKES")
    assert "DISNAKER" in errors[0].message


def check(**changes: Any) -> list[RejectionError]:
    decision = decide_registration(empty_state(), registered(**changes), MALANG, TODAY)
    return decision.errors


def test_several_mistakes_are_all_reported_at_once() -> None:
    errors = check(worker__sex="M", worker__phone="12", worker__kecamatan="Batu", months=12,
                   coverage_start="2025-08")
    assert set(codes(errors)) == {
        E.NIK_SEX_MISMATCH, E.INVALID_PHONE, E.UNKNOWN_KECAMATAN, E.COVERAGE_BEFORE_PROGRAMME,
    }


@pytest.mark.parametrize(
    "changes",
    [
        {"worker__kecamatan": "KEC. BLIMBING", "worker__kelurahan": "kel. arjo-sari"},
        {"worker__kecamatan": "Klojen", "worker__kelurahan": "Oro Oro Dowo"},
        {"worker__kecamatan": " Kecamatan Sukun ", "worker__kelurahan": "bakalan krajan"},
        {"opd_code": "disnaker"},
        {"worker__phone": None},
        {"worker__phone": ""},
        {"worker__full_name": "Moch. Nur'aini, S.Pd"},
        {"worker__full_name": "Ni Luh Putu Ayu"},
        {"worker__nik": "3171014507900001"},  # a Jakarta NIK living in Malang
        {"worker__nik": "3507244507900001"},  # issued in Singosari, Kabupaten Malang
        {"worker__nik": "9101014507900001"},  # Merauke's code before Papua Selatan (93.01)
        {"worker__nik": "3573014507100001", "worker__birth_date": "2010-07-05"},  # 15
        {"worker__nik": "3573014511600001", "worker__birth_date": "1960-11-05"},  # 65
    ],
)
def test_eligible_workers_typed_the_way_clerks_type_are_accepted(changes: dict[str, Any]) -> None:
    decision = decide_registration(empty_state(), registered(**changes), MALANG, TODAY)
    assert decision.errors == []
    assert len(decision.schedules) == 1
    schedule = decision.schedules[0]
    assert schedule.kecamatan in MALANG.kecamatan  # the programme's spelling, for reports
    assert schedule.opd_code in MALANG.opds


@pytest.mark.parametrize(
    ("typed", "normalised"),
    [
        ("0812-3456-7890", "+6281234567890"),
        ("0812.3456.7890", "+6281234567890"),
        ("+62 812 3456 7890", "+6281234567890"),
        ("+62 (0)812 3456 789", "+628123456789"),
        ("62812345678", "+62812345678"),
        ("0062 812 345 678", "+62812345678"),
        ("812345678", "+62812345678"),  # a spreadsheet dropped the leading 0
        ("(0341) 551234", "+62341551234"),
        ("021-5551234", "+62215551234"),
        ("+1 202 555 0101", None),
        ("0812", None),
        ("0812345678901234", None),
        ("hubungi RT", None),
        ("", None),
    ],
)
def test_indonesian_phone_numbers_are_normalised_to_plus_62(
    typed: str, normalised: str | None
) -> None:
    assert normalise_phone(typed) == normalised


# --- the schedule a valid registration gets ----------------------------------------------

def test_a_valid_registration_pays_twelve_months_of_16800() -> None:
    decision = decide_registration(empty_state(), registered(), MALANG, TODAY)
    (schedule,) = decision.schedules
    assert schedule.kind == "due"
    assert [c.period for c in schedule.contributions] == list(period_range("2025-12", 12))
    assert {(c.amount_idr, c.components.jkk, c.components.jkm)
            for c in schedule.contributions} == {(16_800, 10_000, 6_800)}
    assert sum(c.amount_idr for c in schedule.contributions) == 201_600
    assert schedule.funding_source == "DBHCHT"
    # 15 Feb 2026 is a Sunday, the 16th cuti bersama and the 17th Imlek.
    assert [c.due_date for c in schedule.contributions][:3] == [
        date(2025, 12, 15), date(2026, 1, 15), date(2026, 2, 18),
    ]
    # 15 Aug 2026 is a Saturday and the 17th Independence Day.
    assert schedule.contributions[8].due_date == date(2026, 8, 18)


@pytest.mark.parametrize(("start", "last", "first_due"), [
    ("2025-09", "2026-08", date(2025, 9, 15)),
    ("2025-10", "2026-09", date(2025, 10, 15)),
    ("2025-11", "2026-10", date(2025, 11, 17)),  # 15 Nov 2025 is a Saturday
])
def test_an_earlier_cohort_is_covered_for_its_own_twelve_months(
    start: str, last: str, first_due: date
) -> None:
    """Registration was staged from September 2025: each cohort pays its own months."""
    registered_in = date(int(start[:4]), int(start[5:]), 1)
    decision = decide_registration(
        empty_state(), registered(coverage_start=start), MALANG, registered_in)
    assert decision.errors == []
    (schedule,) = decision.schedules
    assert [c.period for c in schedule.contributions] == list(period_range(start, 12))
    assert schedule.contributions[-1].period == last
    assert schedule.contributions[0].due_date == first_due


def test_a_late_start_is_clipped_to_the_programme_end() -> None:
    (schedule,) = decide_registration(
        empty_state(), registered(coverage_start="2026-06"), MALANG, TODAY
    ).schedules
    assert [c.period for c in schedule.contributions] == list(period_range("2026-06", 6))


def test_another_programme_file_changes_the_amounts_without_code() -> None:
    richer = _programme_with(
        premium=MALANG.premium.model_copy(update={"declared_income_idr": 20_700_000})
    )
    (due,) = contributions_for(richer, NIK, ["2025-12"])
    assert (due.amount_idr, due.components.jkk, due.components.jkm) == (213_800, 207_000, 6_800)


starts = st.integers(period_index("2025-09"), period_index("2026-11")).map(
    lambda i: f"{i // 12:04d}-{i % 12 + 1:02d}"
)


@given(start=starts, months=st.integers(1, 12))
def test_schedule_months_amounts_and_due_dates(start: str, months: int) -> None:
    periods = covered_periods(MALANG, start, months)
    room = period_index(MALANG.last_period) - period_index(start) + 1
    assert periods == list(period_range(start, min(months, room)))
    dues = contributions_for(MALANG, NIK, periods)
    assert sum(d.amount_idr for d in dues) == 16_800 * len(periods)
    for due in dues:
        assert due.amount_idr == due.components.jkk + due.components.jkm == 16_800
        assert (due.components.jkk, due.components.jkm) == (10_000, 6_800)
        year, month = map(int, due.period.split("-"))
        fifteenth = date(year, month, 15)
        assert due.due_date >= fifteenth and due.due_date.month == month
        assert due.due_date.weekday() < 5 and due.due_date not in MALANG.holidays
        day = fifteenth
        while day < due.due_date:  # every day skipped was a weekend or a holiday
            assert day.weekday() >= 5 or day in MALANG.holidays
            day += timedelta(days=1)


@given(
    nik=st.builds(
        encode_nik, st.sampled_from(["35", "31", "51"]), st.just("73"), st.just("01"),
        st.dates(date(1961, 1, 1), date(2009, 12, 31)), st.sampled_from(["M", "F"]),
        st.integers(1, 9999),
    ),
    period=starts,
)
def test_contribution_ids_are_the_same_whoever_registers(nik: str, period: str) -> None:
    (first,) = contributions_for(MALANG, nik, [period])
    (again,) = contributions_for(MALANG, nik, [period])
    assert first.contribution_id == again.contribution_id
    assert first.contribution_id == uuid.uuid5(
        IURAN_NAMESPACE, f"contribution:malang-2025:{nik}:{period}"
    )
    (next_month,) = contributions_for(MALANG, nik, [period_from_index(period_index(period) + 1)])
    assert next_month.contribution_id != first.contribution_id


# --- one worker, one paid premium per month ------------------------------------------------

def apply(state: WorkerState, decision: Decision) -> WorkerState:
    return decision.state if decision.state is not None else state


def register(state: WorkerState, programme: Programme = MALANG, **changes: Any) -> Decision:
    return decide_registration(state, registered(**changes), programme, TODAY)


def months_of(decision: Decision) -> list[str]:
    return [c.period for s in decision.schedules for c in s.contributions]


def test_a_second_opd_cannot_pay_for_the_same_months() -> None:
    first = register(empty_state(), opd_code="DISNAKER")
    second = register(apply(empty_state(), first), opd_code="DISHUB", coverage_start="2026-03",
                      months=3)
    assert second.schedules == []
    (dup,) = second.errors
    assert dup.code == E.DUPLICATE_ENROLLMENT
    assert "DISNAKER" in dup.message and "malang-2025" in dup.message
    assert "2026-03 to 2026-05" in dup.message
    assert_no_personal_data(second.errors)


def test_province_and_city_share_a_worker_month_by_month() -> None:
    province = register(empty_state(), PROVINCE, opd_code="DISNAKERTRANS_JATIM", months=6)
    assert months_of(province) == list(period_range("2025-12", 6))
    city = register(apply(empty_state(), province), opd_code="DINSOS")
    assert months_of(city) == list(period_range("2026-06", 6))  # the months nobody pays
    (dup,) = city.errors
    assert dup.code == E.DUPLICATE_ENROLLMENT
    assert "DISNAKERTRANS_JATIM" in dup.message and "jatim-2026" in dup.message
    assert "2025-12 to 2026-05" in dup.message


def test_each_holder_of_overlapping_months_is_named() -> None:
    state = apply(empty_state(), register(empty_state(), opd_code="DISNAKER", months=2))
    state = apply(state, register(state, PROVINCE, opd_code="DISNAKERTRANS_JATIM",
                                  coverage_start="2026-04", months=2))
    third = register(state, opd_code="DISHUB")
    assert len(third.errors) == 2
    assert months_of(third) == ["2026-02", "2026-03", *period_range("2026-06", 6)]


def test_months_that_do_not_overlap_are_accepted() -> None:
    first = register(empty_state(), months=6)
    second = register(apply(empty_state(), first), opd_code="DISHUB",
                      coverage_start="2026-06", months=6)
    assert second.errors == []
    assert months_of(second) == list(period_range("2026-06", 6))


def test_the_same_event_twice_has_no_new_effect() -> None:
    event = registered()
    first = decide_registration(empty_state(), event, MALANG, TODAY)
    state = apply(empty_state(), first)
    again = decide_registration(state, event, MALANG, TODAY)
    assert again.duplicate_event and again.errors == [] and again.state is None
    # Re-emitted identically (same ids), in case the first emission was lost in a crash.
    assert again.schedules == first.schedules


def test_a_rejected_event_sent_twice_is_not_rejected_twice() -> None:
    event = registered(worker__sex="M")
    first = decide_registration(empty_state(), event, MALANG, TODAY)
    assert codes(first.errors) == [E.NIK_SEX_MISMATCH]
    again = decide_registration(apply(empty_state(), first), event, MALANG, TODAY)
    assert again.duplicate_event and again.errors == [] and again.schedules == []


def test_deregistration_stops_payment_and_a_later_registration_is_accepted() -> None:
    first = register(empty_state())
    state = apply(empty_state(), first)
    stop = decide_deregistration(state, deregistered(effective_period="2026-03"), MALANG, TODAY)
    assert stop.errors == []
    (cancelled,) = stop.schedules
    assert cancelled.kind == "cancelled"
    assert [c.period for c in cancelled.contributions] == list(period_range("2026-03", 9))
    paid_ids = {c.period: c.contribution_id for c in first.schedules[0].contributions}
    assert all(paid_ids[c.period] == c.contribution_id for c in cancelled.contributions)
    assert cancelled.opd_code == "DISNAKER"  # the enrolment's OPD bears the cancellation
    state = apply(state, stop)

    partly = register(state, opd_code="DISHUB", coverage_start="2026-02", months=2)
    assert codes(partly.errors) == [E.DUPLICATE_ENROLLMENT]  # February is still paid
    assert months_of(partly) == ["2026-03"]
    back = register(state, opd_code="DISHUB", coverage_start="2026-03", months=9)
    assert back.errors == [] and months_of(back) == list(period_range("2026-03", 9))


def test_a_birth_date_that_differs_from_the_nik_is_a_warning_on_an_accepted_registration(
) -> None:
    event = registered(worker__birth_date="1990-07-06")  # Dukcapil corrected the date
    decision = decide_registration(empty_state(), event, MALANG, TODAY)
    assert decision.errors == []
    assert months_of(decision) == list(period_range("2025-12", 12))
    assert codes(decision.warnings) == [E.NIK_BIRTH_DATE_MISMATCH]
    (schedule,) = decision.schedules
    assert codes(schedule.warnings) == [E.NIK_BIRTH_DATE_MISMATCH]
    assert_no_personal_data(decision.warnings)
    # A replay re-emits the identical schedule, warning included.
    again = decide_registration(apply(empty_state(), decision), event, MALANG, TODAY)
    assert again.duplicate_event and again.schedules == decision.schedules


def test_only_the_enrolling_opd_or_a_coordinator_may_stop_an_enrolment() -> None:
    state = apply(empty_state(), register(empty_state()))  # enrolled by DISNAKER
    foreign = decide_deregistration(state, deregistered(opd_code="DISHUB"), MALANG, TODAY)
    assert foreign.schedules == []
    assert codes(foreign.errors) == [E.DEREGISTRATION_NOT_PERMITTED]
    assert "DISNAKER" in foreign.errors[0].message
    assert_no_personal_data(foreign.errors)
    state_dishub = apply(empty_state(), register(empty_state(), opd_code="DISHUB"))
    for opd in ("DISHUB", "DISNAKER", "DISPENDUKCAPIL"):  # the enroller and the coordinators
        stop = decide_deregistration(state_dishub, deregistered(opd_code=opd), MALANG, TODAY)
        assert stop.errors == [] and len(stop.schedules) == 1, opd


def corrected(**changes: Any) -> WorkerCorrected:
    body = {
        "event_id": str(uuid.uuid4()), "event_type": "corrected",
        "occurred_at": "2025-11-26T08:00:00+07:00", "opd_code": "DISNAKER",
        "programme": "malang-2025", "nik": NIK, "corrected": {"phone": "0813-1111-2222"},
    } | changes
    event = parse_registration(json.dumps(body))
    assert isinstance(event, WorkerCorrected)
    return event


def test_only_the_enrolling_opd_corrects_a_worker_and_nothing_is_paid() -> None:
    state = apply(empty_state(), register(empty_state()))  # enrolled by DISNAKER
    event = corrected()
    own = decide_correction(state, event, MALANG, TODAY)
    assert own.errors == [] and own.schedules == [] and own.state is not None
    assert own.state.enrollments == state.enrollments
    assert own.state.events[str(event.event_id)].outcome == "accepted"
    for opd in ("DISHUB", "DISPENDUKCAPIL"):  # a coordinator stops, it does not correct
        foreign = decide_correction(state, corrected(opd_code=opd), MALANG, TODAY)
        assert codes(foreign.errors) == [E.CORRECTION_NOT_PERMITTED] and not foreign.schedules
        assert "DISNAKER" in foreign.errors[0].message
        assert_no_personal_data(foreign.errors)
    nobody = decide_correction(empty_state(), corrected(), MALANG, TODAY)
    assert codes(nobody.errors) == [E.NOT_ENROLLED]
    first = decide_correction(state, event, MALANG, TODAY, "m1")
    again = decide_correction(apply(state, first), event, MALANG, TODAY, "m1")
    assert again.duplicate_event and again.errors == [] and again.schedules == []


@pytest.mark.parametrize(("fields", "expected"), [
    ({"full_name": "R2-D2"}, [("corrected.full_name", E.INVALID_NAME)]),
    ({"phone": "12"}, [("corrected.phone", E.INVALID_PHONE)]),
    ({"kecamatan": "Klojen", "kelurahan": "Arjosari"},
     [("corrected.kelurahan", E.UNKNOWN_KELURAHAN)]),
    ({"birth_date": "2030-01-01"}, [("corrected.birth_date", E.INVALID_DATE)]),
])
def test_corrected_values_meet_the_registration_rules(
    fields: dict[str, str], expected: list[tuple[str, str]],
) -> None:
    state = apply(empty_state(), register(empty_state()))
    decision = decide_correction(state, corrected(corrected=fields), MALANG, TODAY)
    assert [(e.field, e.code) for e in decision.errors] == expected


def test_a_correction_names_a_field_and_an_address_whole() -> None:
    for fields in ({}, {"phone": None}, {"kecamatan": "Klojen"}):
        event, errors = decode_registration(json.dumps(
            corrected().model_dump(mode="json") | {"corrected": fields}).encode())
        assert event is None and errors, fields


def test_a_corrected_birth_date_that_differs_from_the_nik_is_a_warning() -> None:
    state = apply(empty_state(), register(empty_state()))
    decision = decide_correction(state, corrected(corrected={"birth_date": "1990-07-06"}),
                                 MALANG, TODAY)
    assert decision.errors == [] and codes(decision.warnings) == [E.NIK_BIRTH_DATE_MISMATCH]


def test_deregistering_a_worker_nobody_pays_for_is_refused() -> None:
    decision = decide_deregistration(empty_state(), deregistered(), MALANG, TODAY)
    assert codes(decision.errors) == [E.NOT_ENROLLED]
    assert_no_personal_data(decision.errors)


def test_deregistration_in_one_programme_leaves_the_other_payer_alone() -> None:
    state = apply(empty_state(), register(empty_state(), PROVINCE,
                                          opd_code="DISNAKERTRANS_JATIM"))
    decision = decide_deregistration(state, deregistered(), MALANG, TODAY)
    assert decision.schedules == [] and codes(decision.errors) == [E.NOT_ENROLLED]


def test_deregistration_with_a_broken_nik_or_opd_is_refused() -> None:
    decision = decide_deregistration(
        empty_state(), deregistered(nik=NIK[:12] + "0000", opd_code="DINKES"), MALANG, TODAY
    )
    assert set(codes(decision.errors)) == {E.INVALID_NIK, E.UNKNOWN_OPD}


def test_one_deregistration_stops_every_enrolment_with_distinct_ids_and_replays_them() -> None:
    state = apply(empty_state(), register(empty_state(), months=3))
    state = apply(state, register(state, opd_code="DISHUB", coverage_start="2026-03", months=9))
    event = deregistered(effective_period="2026-02")
    stop = decide_deregistration(state, event, MALANG, TODAY)
    assert sorted(s.opd_code for s in stop.schedules) == ["DISHUB", "DISNAKER"]
    assert len({s.schedule_id for s in stop.schedules}) == 2
    again = decide_deregistration(apply(state, stop), event, MALANG, TODAY)
    assert again.duplicate_event and again.state is None and again.errors == []
    assert again.schedules == stop.schedules


def test_periods_are_described_as_ranges() -> None:
    assert describe_periods(["2026-01", "2025-12", "2026-02", "2026-05"]) == (
        "2025-12 to 2026-02, 2026-05"
    )


# --- the catalogue -------------------------------------------------------------------------

def _nested(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=12), inner, max_size=4)


@settings(max_examples=200)
@given(st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20), _nested, max_leaves=12,
))
def test_any_json_value_gets_catalogued_codes_never_a_crash(value: Any) -> None:
    event, errors = decode_registration(json.dumps(value).encode())
    assert event is None
    assert errors and all(e.code in E.CATALOGUE for e in errors)


def test_every_code_is_catalogued_tested_and_documented() -> None:
    source = "".join((REPO / "services" / "domain" / f"{name}.py").read_text(encoding="utf-8")
                     for name in ("rules", "enrolment", "places"))
    used = {getattr(E, name) for name in re.findall(r"\bE\.([A-Z_]+)\b", source)}
    assert used <= set(E.CATALOGUE)
    covered = {case[-1] for case in DECODING_CASES} | {case[-1] for case in RULE_CASES}
    untested = set(E.CATALOGUE) - covered - TESTED_BY_NAMED_TESTS - set(TESTED_ELSEWHERE)
    assert not untested, f"no test case for {sorted(untested)}"
    unasserted = [code for code, (path, text) in TESTED_ELSEWHERE.items()
                  if text not in (REPO / path).read_text(encoding="utf-8")]
    assert not unasserted, f"the test named for {unasserted} does not assert it"
    docs = (REPO / "docs" / "publishing.md").read_text(encoding="utf-8")
    undocumented = [code for code in E.CATALOGUE if f"`{code}`" not in docs]
    assert not undocumented


def test_the_documented_example_events_are_accepted() -> None:
    docs = (REPO / "docs" / "publishing.md").read_text(encoding="utf-8")
    examples = [json.loads(block) for block in re.findall(r"```json\n(.*?)```", docs, re.S)]
    events = [e for e in examples if "event_type" in e]
    assert [e["event_type"] for e in events] == ["registered", "deregistered", "corrected"]
    state = empty_state()
    for body in events:
        event, errors = decode_registration(json.dumps(body).encode())
        assert errors == [] and event is not None
        decision = decide(state, event, PROGRAMMES, TODAY)
        # a correction pays nothing: it is accepted without a schedule
        assert decision.errors == [] and bool(decision.schedules) == (
            event.event_type != "corrected")
        state = apply(state, decision)


# --- a month paid again after a deregistration: a new generation ---------------------------

def generations_of(decision: Decision) -> dict[str, int]:
    return {c.period: c.generation for s in decision.schedules for c in s.contributions}


def ids_of(decision: Decision) -> dict[str, uuid.UUID]:
    return {c.period: c.contribution_id for s in decision.schedules for c in s.contributions}


def test_a_worker_registered_again_after_a_deregistration_pays_the_months_again() -> None:
    first = register(empty_state())
    state = apply(empty_state(), first)
    stop = decide_deregistration(state, deregistered(effective_period="2026-03"), MALANG, TODAY)
    state = apply(state, stop)
    back = register(state, coverage_start="2026-06", months=6)
    assert back.errors == [] and months_of(back) == list(period_range("2026-06", 6))
    # the re-covered months are generation 1: ids of their own, not the cancelled ones
    assert generations_of(back) == dict.fromkeys(period_range("2026-06", 6), 1)
    assert ids_of(back) == {
        p: contribution_id("malang-2025", NIK, p, 1) for p in period_range("2026-06", 6)}
    assert not set(ids_of(back).values()) & set(ids_of(first).values())
    # the months never cancelled keep generation 0 and the id of programme, NIK and period
    assert generations_of(first) == dict.fromkeys(period_range("2025-12", 12), 0)
    assert ids_of(first)["2025-12"] == uuid.uuid5(
        IURAN_NAMESPACE, f"contribution:malang-2025:{NIK}:2025-12")
    # a registration spanning both: generation 0 where nothing was cancelled, 1 where it was
    wider = MALANG.model_copy(update={"months": 24, "last_period": "2027-11"})
    across = decide_registration(state, registered(coverage_start="2026-06"), wider, TODAY)
    assert generations_of(across) == {**dict.fromkeys(period_range("2026-06", 6), 1),
                                      **dict.fromkeys(period_range("2026-12", 6), 0)}


def test_replaying_a_registration_again_emits_the_same_generation_ids() -> None:
    state = apply(empty_state(), register(empty_state()))
    state = apply(state, decide_deregistration(state, deregistered(effective_period="2026-03"),
                                               MALANG, TODAY))
    event = registered(coverage_start="2026-06", months=6)
    back = decide_registration(state, event, MALANG, TODAY)
    state = apply(state, back)
    # later changes (the same worker deregistered again) do not change what a replay emits
    stop_again = decide_deregistration(state, deregistered(effective_period="2026-09"), MALANG,
                                       TODAY)
    state = apply(state, stop_again)
    replay = decide_registration(state, event, MALANG, TODAY)
    assert replay.duplicate_event and replay.schedules == back.schedules
    assert generations_of(replay) == dict.fromkeys(period_range("2026-06", 6), 1)


def test_a_second_deregistration_cancels_the_ids_of_the_generation_it_stops() -> None:
    state = apply(empty_state(), register(empty_state()))
    state = apply(state, decide_deregistration(state, deregistered(effective_period="2026-03"),
                                               MALANG, TODAY))
    back = register(state, coverage_start="2026-06", months=6)
    state = apply(state, back)
    event = deregistered(effective_period="2026-09")
    stop = decide_deregistration(state, event, MALANG, TODAY)
    (cancelled,) = stop.schedules
    assert ids_of(stop) == {p: ids_of(back)[p] for p in period_range("2026-09", 3)}
    assert generations_of(stop) == dict.fromkeys(period_range("2026-09", 3), 1)
    state = apply(state, stop)
    assert decide_deregistration(state, event, MALANG, TODAY).schedules == [cancelled]
    # registered a third time: a month cancelled twice is generation 2, once generation 1;
    # the months the second registration still pays are not paid twice
    third = register(state, opd_code="DISHUB", coverage_start="2026-03", months=9)
    assert codes(third.errors) == [E.DUPLICATE_ENROLLMENT]
    assert "2026-06 to 2026-08" in third.errors[0].message
    assert generations_of(third) == {**dict.fromkeys(period_range("2026-03", 3), 1),
                                     **dict.fromkeys(period_range("2026-09", 3), 2)}
    assert len(set(ids_of(third).values()) | set(ids_of(back).values())) == 12


def test_a_month_the_province_stopped_paying_is_generation_1_for_the_city() -> None:
    province = register(empty_state(), PROVINCE, opd_code="DISNAKERTRANS_JATIM")
    state = apply(empty_state(), province)
    stop = decide_deregistration(
        state, deregistered(effective_period="2026-04", programme="jatim-2026",
                            opd_code="DISNAKERTRANS_JATIM"), PROVINCE, TODAY)
    assert months_of(stop) == list(period_range("2026-04", 8))
    state = apply(state, stop)
    city = register(state, coverage_start="2026-04", months=8)
    assert city.errors == []
    assert generations_of(city) == dict.fromkeys(period_range("2026-04", 8), 1)
    assert ids_of(city) == {
        p: contribution_id("malang-2025", NIK, p, 1) for p in period_range("2026-04", 8)}


def test_a_registration_after_three_months_without_cover_is_accepted_with_a_cover_gap(
) -> None:
    first = register(empty_state(), opd_code="DISNAKER", coverage_start="2025-09", months=3)
    covered = apply(empty_state(), first)  # 2025-09 to 2025-11
    in_time = register(covered, opd_code="DISHUB", coverage_start="2026-02", months=3)
    assert in_time.errors == [] and codes(in_time.warnings) == []  # two months without cover
    late = register(covered, opd_code="DISHUB", coverage_start="2026-03", months=3)
    assert late.errors == [] and months_of(late) == list(period_range("2026-03", 3))
    assert codes(late.warnings) == [E.COVER_GAP]
    assert "2025-11" in late.warnings[0].message and "3 months" in late.warnings[0].message
    (schedule,) = late.schedules
    assert codes(schedule.warnings) == [E.COVER_GAP]
    assert codes(register(empty_state(), coverage_start="2026-03").warnings) == []  # first cover
