"""Generate the JSON Schema files of the v1 contract: ``python -m schemas.generate``."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from pydantic import BaseModel

from schemas import events

SCHEMA_DIR = Path(__file__).resolve().parent


def render() -> dict[str, str]:
    """File name -> JSON text for every event of the contract."""
    models: dict[str, type[BaseModel]] = {
        "contribution-schedule.v1": events.ContributionSchedule,
        "registration-rejected.v1": events.RejectedEvent,
        "payment-confirmed.v1": events.PaymentConfirmed,
        "coverage-snapshot.v1": events.CoverageSnapshot,
        "ledger.v1": events.LedgerEvent,
        "bpjs-verification.v1": events.BpjsVerification,
        "bpjs-bill.v1": events.BpjsBill,
    }
    schemas: dict[str, dict[str, object]] = {
        name: model.model_json_schema() for name, model in models.items()
    }
    registration = events.registration_json_schema()
    registration["title"] = "RegistrationEvent"
    schemas["registration.v1"] = registration
    return {
        f"{name}.schema.json": json.dumps(schema, indent=2, sort_keys=True) + "\n"
        for name, schema in sorted(schemas.items())
    }


def main() -> int:
    for file_name, text in render().items():
        (SCHEMA_DIR / file_name).write_text(text, encoding="utf-8")
    sys.stdout.write(f"wrote {len(render())} schema files to {SCHEMA_DIR}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
