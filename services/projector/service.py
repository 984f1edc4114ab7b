"""Run the projector process: the Faust worker plus the ops endpoints and /coverage."""

from __future__ import annotations

from services.domain.programme import load_programmes
from services.projector.app import Projection, create_app
from services.runtime import metrics
from services.runtime.faust_worker import run_faust_app
from services.runtime.settings import Settings


def run(settings: Settings) -> int:
    programmes = load_programmes(settings.programmes_dir)
    metrics.note_calendars(programmes.values())
    projection = Projection(programmes)
    app = create_app(settings, projection.programmes, projection)
    return run_faust_app(app, "projector", settings, routes={"/coverage": projection.handler},
                         health=projection.readiness)
