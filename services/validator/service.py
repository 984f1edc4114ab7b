"""Run the validator process: the Faust worker plus the ops endpoints."""

from __future__ import annotations

from services.domain.programme import load_programmes
from services.runtime.faust_worker import run_faust_app
from services.runtime.settings import Settings
from services.validator.app import Health, create_app


def run(settings: Settings) -> int:
    health = Health()
    app = create_app(settings, load_programmes(settings.programmes_dir), health)
    return run_faust_app(app, "validator", settings, health=health)
