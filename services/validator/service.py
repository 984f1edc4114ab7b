"""Run the validator process: the Faust worker plus the ops endpoints."""

from __future__ import annotations

import gc

from services.domain.programme import load_programmes
from services.runtime import metrics
from services.runtime.faust_worker import run_faust_app
from services.runtime.settings import Settings
from services.validator.app import Health, create_app

# A young-generation collection every 50,000 allocations instead of 700: a batch of 500
# registrations allocates ~100 objects each (models, ids, lists), nearly all freed by
# reference counting, and with the default the collector ran over a batch's live objects
# dozens of times per batch (~40 % of the decision's CPU in the micro-benchmark).
GC_THRESHOLDS = (50_000, 50, 1000)


def tune_gc() -> None:
    """Leave what is loaded at start (Faust, pydantic schemas, programmes) out of every
    collection (``gc.freeze``) and collect the young generation less often."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def run(settings: Settings) -> int:
    health = Health()
    programmes = load_programmes(settings.programmes_dir)
    metrics.note_calendars(programmes.values())
    app = create_app(settings, programmes, health)
    tune_gc()
    return run_faust_app(app, "validator", settings, health=health)
