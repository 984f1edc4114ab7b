"""The registration gateway when Kafka goes away in the middle of the day: a submission the
broker does not acknowledge is answered 503 with its id, its rows stay recorded as not
sent, and the same request sent again once the broker is back publishes them, once."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from schemas.events import TOPIC_REGISTRATIONS
from services.api.app import create_app
from services.api.auth import ApiSettings, ApiToken
from services.domain.programme import load_programmes
from services.runtime.embedded import EmbeddedBroker
from services.runtime.kafka import ensure_topics
from services.runtime.settings import Settings
from tests.support.faults import wait_for
from tests.support.gateway import template_csv, template_row
from tests.support.infra import BUSINESS_DATE
from tests.support.kafka import collect
from tests.support.ledger import scratch_database
from tests.support.workers import registration

pytestmark = pytest.mark.integration

TOKEN = "dishub-gateway-fault-token"
HEADERS = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "text/csv"}


async def _connected(app: FastAPI) -> bool:
    return app.state.gateway.producer is not None and app.state.database.pool is not None


@pytest.fixture
async def url(database_url: str) -> AsyncIterator[str]:
    async with scratch_database(database_url, prefix="iuran_gateway") as scratch:
        yield scratch


async def test_a_submission_the_broker_lost_is_sent_by_the_same_request_again(
    url: str, session_dir: Path
) -> None:
    broker = EmbeddedBroker(session_dir / "gateway-broker")
    bootstrap = broker.start()
    kafka = Settings(kafka_bootstrap=bootstrap, database_url=url, partitions=1,
                     business_date=BUSINESS_DATE)
    api = ApiSettings(tokens=[ApiToken(token=TOKEN, roles=("opd",), name="dishub",
                                       opd_code="DISHUB", programmes=("malang-2025",))])
    app = create_app(url, api, kafka=kafka, programmes=load_programmes(kafka.programmes_dir),
                     broker_timeout_ms=3000, clock=kafka.now)
    try:
        async with app.router.lifespan_context(app):
            assert await wait_for(lambda: _connected(app), within=60)
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://api",
                                         timeout=60) as client:
                first = registration(opd_code="DISHUB")
                sent = await client.post("/v1/registrations", headers={
                    **HEADERS, "Idempotency-Key": "before"}, content=template_csv(
                        [template_row(first)]))
                assert sent.status_code == 201 and sent.json()["published"] == 1

                broker.stop()
                lost = registration(opd_code="DISHUB")
                body = template_csv([template_row(lost)])
                key = {"Idempotency-Key": f"during-{uuid.uuid4()}"}
                refused = await client.post("/v1/registrations", headers={**HEADERS, **key},
                                            content=body)
                assert refused.status_code == 503, refused.text
                detail = refused.json()["detail"]
                assert detail["code"] == "broker_unavailable"
                rows = (await client.get(f"/v1/submissions/{detail['submission_id']}",
                                         headers=HEADERS)).json()["rows"]
                assert [(r["row"], r["status"], r["final"]) for r in rows] == [
                    (2, "not_sent", False)]

                broker.start()  # same port; the in-memory broker starts empty
                await ensure_topics(kafka)
                again = await client.post("/v1/registrations", headers={**HEADERS, **key},
                                          content=body)
                assert again.status_code == 200, again.text
                assert again.json()["submission_id"] == detail["submission_id"]
                assert again.json()["published"] == 1
                twice = await client.post("/v1/registrations", headers={**HEADERS, **key},
                                          content=body)
                assert twice.json()["published"] == 0
                rows = (await client.get(f"/v1/submissions/{detail['submission_id']}",
                                         headers=HEADERS)).json()["rows"]
                assert [r["status"] for r in rows] == ["pending"]
                key_of_lost = lost.worker.nik.encode()
                found = await collect(kafka, TOPIC_REGISTRATIONS,
                                      lambda r: r.key == key_of_lost, want=1)
                assert len(found) == 1
    finally:
        broker.stop()
