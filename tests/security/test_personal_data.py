"""Personal data stays out of everything operators and other systems see: a batch with
accepted and rejected registrations runs through the shared stack, then the service logs,
the /metrics text of every service, the error fields and messages of the rejected topic, the
domain's exception texts and the output of `iuran publish` are scanned for every full NIK,
full name and phone number of the batch. (The rejected topic's ``original`` field carries
the publisher's own message back by contract and is not scanned.)"""

from __future__ import annotations

import asyncio
import json
import random
import string
import subprocess
import sys
import uuid
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import pytest

from schemas.events import TOPIC_REGISTRATIONS, TOPIC_REJECTED, RejectedEvent, WorkerRegistered
from services.domain.enrolment import decide, empty_state
from services.domain.nik import NikError, parse_nik
from services.domain.programme import load_programmes
from services.runtime.settings import Settings
from services.runtime.stack import ServiceProcesses
from services.validator.decode import decode_registration
from tests.support import faults
from tests.support.kafka import collect, publish
from tests.support.workers import as_message, deregistration, registration, unique_nik

pytestmark = pytest.mark.integration

_rng = random.Random(uuid.uuid4().int)  # noqa: S311 - unique test data


def person_name() -> str:
    """A real-looking name that no other test uses."""
    def word() -> str:
        return _rng.choice(string.ascii_uppercase) + "".join(
            _rng.choice("aeiou" if i % 2 else "bdgjklmnprstwz") for i in range(7))
    return f"{word()} {word()}"


def phone() -> str:
    digits = "".join(_rng.choice(string.digits) for _ in range(8))
    return f"0812-{digits[:4]}-{digits[4:]}"


@dataclass
class Batch:
    messages: list[tuple[bytes | None, bytes]] = field(default_factory=list)
    niks: set[str] = field(default_factory=set)
    names: set[str] = field(default_factory=set)
    phones: set[str] = field(default_factory=set)
    event_ids: set[str] = field(default_factory=set)
    raw: list[bytes] = field(default_factory=list)

    def person(self, **changes: object) -> WorkerRegistered:
        event = registration(**changes)  # type: ignore[arg-type]
        worker = event.worker.model_copy(update={"full_name": person_name(), "phone": phone()})
        event = event.model_copy(update={"worker": worker})
        self.niks.add(worker.nik)
        self.names.add(worker.full_name)
        assert worker.phone
        self.phones.add(worker.phone)
        self.event_ids.add(str(event.event_id))
        return event

    def add(self, key: bytes | None, value: bytes) -> None:
        self.messages.append((key, value))
        self.raw.append(value)

    def add_event(self, event: WorkerRegistered, **fields: object) -> None:
        body = json.loads(event.model_dump_json())
        for path, value in fields.items():
            target = body
            parts = path.split("__")
            for part in parts[:-1]:
                target = target[part]
            target[parts[-1]] = value
        self.add(event.worker.nik.encode(), json.dumps(body).encode())

    def secrets(self) -> list[str]:
        found = set(self.niks) | set(self.names)
        for number in self.phones:
            digits = "".join(c for c in number if c.isdigit())
            found |= {number, digits, "62" + digits[1:], "+62" + digits[1:]}
        return sorted(found)


def ordinary_rejections(batch: Batch) -> None:
    """11 accepted workers, and rejections of the everyday kinds, each naming its person."""
    for _ in range(10):
        batch.add(*as_message(batch.person()))
    twice = batch.person()
    batch.add(*as_message(twice))
    again = twice.model_copy(update={"event_id": uuid.uuid4(), "opd_code": "DISHUB"})
    batch.event_ids.add(str(again.event_id))
    batch.add(*as_message(again))  # duplicate_enrollment across OPDs
    wrong_day = batch.person()
    bad_nik = wrong_day.worker.nik[:6] + "99" + wrong_day.worker.nik[8:]
    batch.niks.add(bad_nik)
    batch.add(bad_nik.encode(), json.dumps({**json.loads(wrong_day.model_dump_json()),
                                            "worker": {**json.loads(wrong_day.worker
                                                                    .model_dump_json()),
                                                       "nik": bad_nik}}).encode())
    batch.add_event(batch.person(), worker__kecamatan="Atlantis")
    batch.add_event(batch.person(), worker__kelurahan="Atlantis")
    batch.add_event(batch.person(), worker__phone="0812-BUKAN-NOMOR")
    named = batch.person()
    batch.names.add(named.worker.full_name + " 1234")
    batch.add_event(named, worker__full_name=named.worker.full_name + " 1234")
    batch.add_event(batch.person(), worker__sex="X")
    batch.add_event(batch.person(), coverage_start="2024-01")
    batch.add_event(batch.person(), worker__birth_date="1890-01-01")
    batch.add_event(batch.person(), opd_code="NOT_AN_OPD")
    batch.add_event(batch.person(), programme="jakarta-2031")
    mismatch = batch.person()
    batch.add(unique_nik().encode(), as_message(mismatch)[1])  # key_mismatch
    stray = unique_nik()
    batch.niks.add(stray)
    batch.add(*as_message(deregistration(stray, "2026-01")))  # not_enrolled
    big = batch.person()
    batch.add_event(big, note="x" * 70_000)  # message_too_large
    broken = batch.person()
    batch.add(broken.worker.nik.encode(), as_message(broken)[1][:-40])  # malformed_json


def personal_data_in_codes(batch: Batch) -> None:
    """A publisher that shifted its columns: personal data where codes belong."""
    for target in ("opd_code", "programme"):
        for value_of in ("nik", "full_name", "phone"):
            event = batch.person()
            value = getattr(event.worker, value_of)
            batch.add_event(event, **{target: value})


async def run_batch(settings: Settings, batch: Batch, want: int) -> list[RejectedEvent]:
    await publish(settings, TOPIC_REGISTRATIONS, batch.messages)
    raw = set(batch.raw)

    def ours(record: object) -> bool:
        event = RejectedEvent.model_validate_json(record.value)  # type: ignore[attr-defined]
        return event.event_id in batch.event_ids or event.original.encode() in raw or any(
            nik in event.original for nik in batch.niks)

    records = await collect(settings, TOPIC_REJECTED, ours, want=want, timeout=30)
    return [RejectedEvent.model_validate_json(r.value) for r in records]


def leaks(text: str, secrets: list[str]) -> list[str]:
    return [s for s in secrets if s in text]


def error_texts(rejected: list[RejectedEvent]) -> str:
    return "\n".join(f"{e.field} {e.code} {e.message}" for r in rejected for e in r.errors)


@pytest.fixture(scope="module")
async def ordinary(
    stack: ServiceProcesses, settings: Settings
) -> tuple[Batch, list[RejectedEvent]]:
    batch = Batch()
    ordinary_rejections(batch)
    rejected = await run_batch(settings, batch, want=len(batch.messages) - 11)
    await asyncio.sleep(2)  # the logs and counters of the batch are written by now
    faults.record("security.personal-data-batch", messages=len(batch.messages),
                  rejected=len(rejected),
                  codes=sorted({e.code for r in rejected for e in r.errors}),
                  values_scanned_for=len(batch.secrets()))
    return batch, rejected


async def test_rejections_say_what_is_wrong_without_personal_data(
    ordinary: tuple[Batch, list[RejectedEvent]],
) -> None:
    batch, rejected = ordinary
    codes = {e.code for r in rejected for e in r.errors}
    assert {"duplicate_enrollment", "invalid_nik", "unknown_kecamatan", "invalid_phone",
            "invalid_name", "key_mismatch", "not_enrolled", "message_too_large",
            "malformed_json", "unknown_opd", "unknown_programme"} <= codes
    found = leaks(error_texts(rejected), batch.secrets())
    assert not found, f"rejection messages carry personal data: {found}"


async def test_logs_and_metrics_carry_no_personal_data(
    ordinary: tuple[Batch, list[RejectedEvent]], stack: ServiceProcesses, settings: Settings,
) -> None:
    batch, _ = ordinary
    secrets = batch.secrets()
    logs = {p.name: p.read_text(encoding="utf-8", errors="replace")
            for p in sorted(stack.log_dir.glob("*.log"))}
    assert logs, "no service logs to scan"
    for name, text in logs.items():
        assert not leaks(text, secrets), f"{name} carries personal data: {leaks(text, secrets)}"
    for service in stack.names:
        text = faults.metrics_text(settings, service)
        assert not leaks(text, secrets), f"/metrics of {service}: {leaks(text, secrets)}"
    faults.record("security.scanned", logs={k: len(v) for k, v in logs.items()},
                  metrics_services=list(stack.names))


async def test_personal_data_in_the_code_fields_is_not_echoed(
    stack: ServiceProcesses, settings: Settings,
) -> None:
    batch = Batch()
    personal_data_in_codes(batch)
    rejected = await run_batch(settings, batch, want=len(batch.messages))
    assert len(rejected) == len(batch.messages)
    found = leaks(error_texts(rejected), batch.secrets())
    faults.record("security.code-fields", cases=len(batch.messages), leaked=len(found))
    assert not found, f"rejection messages echo personal data: {found}"


def test_exception_texts_of_the_domain_carry_no_personal_data() -> None:
    batch = Batch()
    ordinary_rejections(batch)
    programmes = load_programmes(Settings().programmes_dir)
    texts = []
    for nik in batch.niks:
        for broken in (nik[:6] + "99" + nik[8:], nik[:-4] + "0000", "99" + nik[2:], nik[:15]):
            try:
                parse_nik(broken, reference=date(2025, 11, 25))
            except NikError as exc:
                texts += [str(exc), exc.message, repr(exc)]
    for value in batch.raw:
        event, errors = decode_registration(value)
        texts += [f"{e.field} {e.message}" for e in errors]
        if event is not None:
            decision = decide(empty_state(), event, programmes, date(2025, 11, 25))
            texts += [f"{e.field} {e.message}" for e in decision.errors]
    secrets = [s for s in batch.secrets()] + [n[:6] + "99" + n[8:] for n in batch.niks]
    found = leaks("\n".join(texts), secrets)
    assert len(texts) > 20
    assert not found, f"exception or error texts carry personal data: {found}"


def test_iuran_publish_reports_wrong_rows_without_personal_data(tmp_path: Path) -> None:
    names = [person_name() for _ in range(3)]
    phones = [phone() for _ in range(3)]
    niks = [unique_nik() for _ in range(3)]
    rows = [
        f"{niks[0][:6]}99{niks[0][8:]},{names[0]},1990-01-01,M,ojek_online,Klojen,Kauman,"
        f"{phones[0]},2025-12,12",
        f"{niks[1]},{names[1]} 99,1990-01-01,M,ojek_online,Atlantis,Kauman,{phones[1]},2025-12,12",
        f"{niks[2]},{names[2]},1990-01-01,X,ojek_online,Klojen,Kauman,0812-BUKAN,2025-13,12",
    ]
    path = tmp_path / "workers.csv"
    path.write_text("nik,full_name,birth_date,sex,category,kecamatan,kelurahan,phone,"
                    "coverage_start,months\n" + "\n".join(rows) + "\n", encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "services.cli.main", "publish", str(path), "--opd", "DISNAKER",
         "--programme", "malang-2025", "--dry-run"],
        capture_output=True, text=True, timeout=120, check=False)
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert "row 2" in output and "row 4" in output
    secrets = niks + names + phones + [niks[0][:6] + "99" + niks[0][8:]]
    found = leaks(output, secrets)
    assert not found, f"iuran publish printed personal data: {found}"
