"""The operations endpoints every service serves: /healthz, /readyz and /metrics."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from services.runtime import ops

log = logging.getLogger(__name__)

ReadinessCheck = Callable[[], tuple[bool, str]]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class OpsServer:
    """A small aiohttp server; ``ready`` says whether the service can do its work now."""

    def __init__(
        self,
        service: str,
        host: str,
        port: int,
        ready: ReadinessCheck,
        routes: dict[str, Handler] | None = None,
    ) -> None:
        self.service = service
        self._routes = routes or {}
        self.host = host
        self.port = port
        self._ready = ready
        self._runner: web.AppRunner | None = None

    def _app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        app.router.add_get("/metrics", self._metrics)
        for path, handler in self._routes.items():
            app.router.add_get(path, handler)
        return app

    async def _healthz(self, _: web.Request) -> web.Response:
        return web.json_response(ops.health(self.service))

    async def _readyz(self, _: web.Request) -> web.Response:
        body, status = ops.readiness(self.service, *self._ready())
        return web.json_response(body, status=status)

    async def _metrics(self, _: web.Request) -> web.Response:
        response = web.Response(body=ops.metrics_text())
        response.headers["Content-Type"] = ops.METRICS_CONTENT_TYPE
        return response

    async def start(self) -> None:
        self._runner = web.AppRunner(self._app(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        log.info("%s serves /healthz /readyz /metrics on http://%s:%d",
                 self.service, self.host, self.port)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
