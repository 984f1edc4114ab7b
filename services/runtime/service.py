"""What every long-running iuran process shares: the ops endpoints, readiness and a clean
stop on SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import logging
import signal

from services.runtime import metrics
from services.runtime.http import OpsServer
from services.runtime.settings import Settings

log = logging.getLogger(__name__)


class Service:
    """Subclasses implement ``run`` (return when ``stopping`` is set) and ``readiness``."""

    name = "service"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.stopping = asyncio.Event()

    def readiness(self) -> tuple[bool, str]:
        return True, "ok"

    async def run(self) -> None:
        raise NotImplementedError

    async def serve(self) -> None:
        """Run until SIGTERM/SIGINT, serving /healthz, /readyz and /metrics meanwhile."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stopping.set)
        ops = OpsServer(self.name, self.settings.http_host, self.settings.port_of(self.name),
                        self.readiness)
        await ops.start()
        metrics.SERVICE_READY.labels(self.name).set(0)
        worker = asyncio.create_task(self.run(), name=f"{self.name}-run")
        stop = asyncio.create_task(self.stopping.wait(), name=f"{self.name}-stop")
        try:
            done, _ = await asyncio.wait({worker, stop}, return_when=asyncio.FIRST_COMPLETED)
            if worker in done:
                worker.result()  # re-raise a crash
            else:
                log.info("%s stopping", self.name)
                try:
                    await asyncio.wait_for(worker, timeout=20)
                except TimeoutError:
                    worker.cancel()
        finally:
            stop.cancel()
            await ops.stop()
