"""Run a Faust app as its own process, with the ops endpoints every service serves."""

from __future__ import annotations

import faust

from services.runtime import metrics
from services.runtime.http import Handler, OpsServer
from services.runtime.settings import Settings


def run_faust_app(
    app: faust.App, service: str, settings: Settings, routes: dict[str, Handler] | None = None
) -> int:
    state = {"started": False}

    def readiness() -> tuple[bool, str]:
        if not state["started"]:
            return False, "starting"
        if app.rebalancing:
            return False, "rebalancing"
        return True, "ok"

    ops = OpsServer(service, settings.http_host, settings.port_of(service), readiness, routes)

    @app.task
    async def _start_ops() -> None:
        await ops.start()
        state["started"] = True
        metrics.SERVICE_READY.labels(service).set(1)

    worker = faust.Worker(app, loglevel=settings.log_level, quiet=True,
                          override_logging=False, redirect_stdouts=False)
    worker.execute_from_commandline()
    return 0
