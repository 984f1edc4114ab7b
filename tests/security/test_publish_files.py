"""`iuran publish` on broken upload files, as a clerk would run it against the real broker:
wrong encoding, a binary file, missing columns, formulas, a broken XLSX, an empty file and
a huge one. Each gets a clear error and a non-zero exit, never a stack trace, and nothing
reaches the registrations topic."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from openpyxl import Workbook

from schemas.events import TOPIC_REGISTRATIONS
from services.runtime.settings import Settings
from tests.support import faults
from tests.support.settle import read_to_end
from tests.support.workers import unique_nik

pytestmark = pytest.mark.integration

HEADER = ("nik,full_name,birth_date,sex,category,kecamatan,kelurahan,phone,coverage_start,"
          "months")
HUGE_ROWS = faults.env_int("IURAN_PUBLISH_HUGE_ROWS", 20_000)


def row(nik: str, name: str = "Budi Santoso", sex: str = "M") -> str:
    return f"{nik},{name},1990-01-01,{sex},ojek_online,Klojen,Kauman,0812-3456-7890,2025-12,12"


def files(folder: Path, niks: list[str]) -> dict[str, tuple[Path, int]]:
    """name -> (file, the exit code iuran publish must give)."""
    made: dict[str, tuple[Path, int]] = {}

    def put(name: str, data: bytes, code: int) -> None:
        path = folder / name
        path.write_bytes(data)
        made[name] = (path, code)

    put("latin1-undefined-bytes.csv",
        (HEADER + "\n" + row(niks[0], "Budi \x81\x8d\x8f\x90\x9d") + "\n").encode("latin-1"), 2)
    put("picture-renamed.csv", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 40, 2)
    put("missing-columns.csv", b"nama,alamat\nBudi Santoso,Jl. Ijen 1\n", 2)
    put("empty.csv", b"", 2)
    put("header-only.csv", (HEADER + "\n").encode(), 2)
    put("formula-injection.csv", (HEADER + "\n" + row(niks[1], "=HYPERLINK(\"http://x\")")
                                  + "\n" + row(niks[2]) + "\n").encode(), 1)
    put("not-a-zip.xlsx", b"PK\x03\x04 this is not a workbook" * 10, 2)
    workbook = Workbook()
    sheet = workbook.active
    sheet.append(HEADER.split(","))
    sheet.append(row(niks[3]).split(","))
    values = row(niks[4]).split(",")
    values[0] = "=CONCATENATE(\"3573\",\"014507900001\")"
    sheet.append(values)
    workbook.save(folder / "formula.xlsx")
    made["formula.xlsx"] = (folder / "formula.xlsx", 1)
    with (folder / "huge.csv").open("w", encoding="utf-8") as out:
        out.write(HEADER + "\n")
        for index in range(HUGE_ROWS):  # every row wrong: a NIK whose birth day is 99
            nik = niks[5 + index % 20]
            out.write(row(nik[:6] + "99" + nik[8:]) + "\n")
    made["huge.csv"] = (folder / "huge.csv", 1)
    put("random-text.csv", os.urandom(3 * 1024 * 1024).hex().encode()[:6 * 1024 * 1024], 2)
    return made


# The command as a clerk runs it (the console script), not `python -m services.cli.main`.
IURAN = [str(Path(sys.executable).with_name("iuran"))]


def publish_all(made: dict[str, tuple[Path, int]], env: dict[str, str],
                cwd: Path) -> dict[str, tuple[int, str, str]]:
    """Run `iuran publish` on every file at once; exit code, stdout and stderr of each."""
    running = {
        name: subprocess.Popen(
            [*IURAN, "publish", str(path), "--opd", "DISNAKER", "--programme", "malang-2025"],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=cwd)
        for name, (path, _) in made.items()
    }
    results = {}
    for name, process in running.items():
        out, err = process.communicate(timeout=180)
        results[name] = (process.returncode, out, err)
    return results


async def test_broken_upload_files_get_a_clear_error_and_publish_nothing(
    tmp_path: Path, settings: Settings, bootstrap: str
) -> None:
    niks = [unique_nik() for _ in range(25)]
    made = files(tmp_path, niks)
    env = {k: v for k, v in os.environ.items() if not k.startswith("IURAN_")}
    env.update({"IURAN_KAFKA_BOOTSTRAP": bootstrap, "IURAN_DATA_DIR": str(tmp_path / "data"),
                "IURAN_BUSINESS_DATE": str(settings.business_date)})  # the programme is open
    started = time.monotonic()
    results = await asyncio.to_thread(publish_all, made, env, tmp_path)
    seconds = round(time.monotonic() - started, 1)

    problems = []
    for name, (code, out, err) in results.items():
        expected = made[name][1]
        text = out + err
        if code != expected:
            problems.append(f"{name}: exit {code}, expected {expected}: {text[-500:]}")
        if "Traceback" in text or "File \"/" in text:
            problems.append(f"{name}: a stack trace reached the clerk: {text[-800:]}")
        if expected == 2 and len(err.strip().splitlines()) != 1:
            problems.append(f"{name}: not one line of error: {err[-500:]}")
        if expected == 2 and not err.startswith("iuran: "):
            problems.append(f"{name}: the error does not say who speaks: {err[:200]}")
        if expected == 1 and "nothing was published" not in out:
            problems.append(f"{name}: does not say that nothing was published: {out[-300:]}")
    keys = {n.encode() for n in niks} | {(n[:6] + "99" + n[8:]).encode() for n in niks}
    # every `iuran publish` has exited: whatever it sent is in the topic, read to its end
    published = await read_to_end(settings, TOPIC_REGISTRATIONS, lambda r: r.key in keys)
    faults.record("security.publish-files", files=len(made), seconds=seconds,
                  huge_rows=HUGE_ROWS, huge_bytes=made["huge.csv"][0].stat().st_size,
                  exits={name: code for name, (code, _, _) in results.items()},
                  published=len(published))
    assert not problems, "\n".join(problems)
    assert not published, f"{len(published)} event(s) of broken files reached the topic"
    huge_err = results["huge.csv"][2]
    assert f"and {HUGE_ROWS - 50} more wrong row(s)" in huge_err


def test_a_cli_error_is_one_line_also_under_python_m(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "services.cli.main", "publish", str(tmp_path / "absent.csv"),
         "--opd", "DISNAKER", "--programme", "malang-2025", "--dry-run"],
        capture_output=True, text=True, timeout=120, check=False)
    assert "Traceback" not in result.stderr, result.stderr[-600:]
    assert result.returncode == 2
