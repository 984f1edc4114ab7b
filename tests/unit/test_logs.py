"""The JSON log line of IURAN_LOG_JSON=true: the fields operators' log queries rely on."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

from services.runtime.logs import json_formatter


def record(msg: str, *args: object, exc: bool = False, **extra: object) -> logging.LogRecord:
    exc_info = None
    if exc:
        try:
            raise ZeroDivisionError("division by zero")
        except ZeroDivisionError:
            exc_info = sys.exc_info()
    made = logging.LogRecord("services.ledger.service", logging.WARNING, __file__, 1, msg, args,
                             exc_info)
    made.__dict__.update(extra)
    return made


def test_a_json_line_carries_time_level_logger_message_and_the_stream_position() -> None:
    line = json_formatter().format(record(
        "ledger write failed (%s); retrying", "OSError", topic="iuran.contributions.v1",
        partition=3, offset=1207, code="internal_error"))
    payload = json.loads(line)
    assert "\n" not in line
    assert payload["level"] == "WARNING" and payload["logger"] == "services.ledger.service"
    assert payload["msg"] == "ledger write failed (OSError); retrying"
    assert (payload["topic"], payload["partition"], payload["offset"], payload["code"]) == (
        "iuran.contributions.v1", 3, 1207, "internal_error")
    at = datetime.fromisoformat(payload["ts"])
    assert at.utcoffset() is not None and at.utcoffset().total_seconds() == 0  # type: ignore[union-attr]
    assert abs((datetime.now(UTC) - at).total_seconds()) < 60
    assert "exc" not in payload


def test_an_exception_travels_in_exc_and_text_stays_unescaped() -> None:
    payload = json.loads(json_formatter().format(record("gagal: Rp16.800 — %s", "Ø", exc=True)))
    assert payload["msg"] == "gagal: Rp16.800 — Ø"
    assert "ZeroDivisionError: division by zero" in payload["exc"]
