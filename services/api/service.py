"""`iuran service api`: the API (finance reads, the registration gateway, the coverage and
OPD pages) under uvicorn on IURAN_API_PORT (default 8100), with /healthz, /readyz and
/metrics like every service."""

from __future__ import annotations

import logging
import sys

import uvicorn

from services.api.app import create_app
from services.api.auth import check_opd_tokens, load_api_settings
from services.api.coverage import coverage_router
from services.domain.programme import load_programmes
from services.privacy.keys import privacy_keys
from services.runtime import metrics
from services.runtime.settings import Settings, SettingsError

log = logging.getLogger(__name__)


def run(settings: Settings) -> int:
    programmes = load_programmes(settings.programmes_dir)
    metrics.note_calendars(programmes.values())
    try:
        api_settings = load_api_settings(settings)  # no placeholder tokens in production
        check_opd_tokens(api_settings, {p.id: p.opds for p in programmes.values()})
        keys = privacy_keys(settings)  # no placeholder secret in production
    except SettingsError as exc:
        sys.stderr.write(f"iuran: bad configuration: {exc}\n")
        return 2
    assert settings.database_url
    app = create_app(settings.database_url, api_settings,
                     routers=[lambda pool: coverage_router(pool, lambda: programmes)],
                     kafka=settings if settings.kafka_bootstrap else None,
                     programmes=programmes, keys=keys, clock=settings.now)
    config = uvicorn.Config(
        app, host=settings.http_host, port=settings.api_port, log_config=None,
        access_log=False, proxy_headers=False, server_header=False,
    )
    log.info("api serves /docs, /healthz, /readyz, /metrics on http://%s:%d",
             settings.http_host, settings.api_port)
    uvicorn.Server(config).run()
    return 0
