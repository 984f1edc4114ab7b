"""``iuran``: run everything on embedded infrastructure, run one service, publish, migrate.

Each sub-command lives in its own module exposing ``register(subparsers)``; the module sets
``handler`` on its parser. A handler returns the process exit code.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import signal
import sys
from collections.abc import Sequence
from typing import NoReturn

from pydantic import ValidationError

from services.cli.errors import CliError
from services.runtime.logs import configure_logging
from services.runtime.settings import SettingsError, get_settings

__all__ = ["CliError", "build_parser", "main"]

COMMAND_MODULES = (
    "services.cli.up",
    "services.cli.service",
    "services.cli.demo",
    "services.cli.migrate",
    "services.cli.bench",
    "services.cli.publish",
    "services.cli.bill",
    "services.cli.budget",
    "services.cli.export",
    "services.cli.discrepancy",
    "services.cli.payment",
    "services.cli.credit",
    "services.cli.contribution",
    "services.cli.deadletter",
    "services.cli.privacy",
    "services.cli.renew",
    "services.cli.bpjs",
)

log = logging.getLogger("iuran")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, non-zero exit
        sys.stderr.write(f"iuran: {message} (see iuran --help)\n")
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="iuran", description=__doc__.splitlines()[0] if __doc__ else None)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        settings = get_settings()
    except (ValidationError, SettingsError) as exc:
        sys.stderr.write(f"iuran: bad configuration: {_one_line(exc)}\n")
        return 2
    configure_logging(settings.log_level, json_lines=settings.log_json)
    signal.signal(signal.SIGTERM, _terminate)
    try:
        return int(args.handler(args, settings))
    except CliError as exc:
        sys.stderr.write(f"iuran: {exc}\n")
        return 2
    except KeyboardInterrupt:
        return 130


def _terminate(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def _one_line(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        return f"IURAN_{field.upper()}: {first['msg']}"
    return str(exc).replace("\n", " ")


if __name__ == "__main__":
    raise SystemExit(main())
