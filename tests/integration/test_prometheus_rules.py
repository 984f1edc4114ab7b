"""The alert rules and dashboards against the real Prometheus tools.

`promtool` checks and unit-tests deploy/prometheus/alerts.yml; a real `prometheus` server
(Debian's prometheus package has both) scrapes a small HTTP server exposing iuran metrics,
evaluates the alert rules and answers the queries of the Grafana dashboards.
"""

from __future__ import annotations

import contextlib
import json
import math
import shutil
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    generate_latest,
)

from services.runtime import metrics

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS_DIR = ROOT / "deploy" / "prometheus"
DASHBOARDS_DIR = ROOT / "deploy" / "grafana" / "dashboards"
START_TIMEOUT = 30.0
SCRAPE_TIMEOUT = 30.0

PROMTOOL = shutil.which("promtool")
PROMETHEUS = shutil.which("prometheus")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool is not installed (apt-get install prometheus)"
)
needs_prometheus = pytest.mark.skipif(
    PROMETHEUS is None, reason="prometheus is not installed (apt-get install prometheus)"
)


def _promtool(*args: str, cwd: Path = PROMETHEUS_DIR) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL is not None
    return subprocess.run(
        [PROMTOOL, *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )


# --- promtool ---------------------------------------------------------------------------


@needs_promtool
def test_alert_rules_pass_promtool_check() -> None:
    result = _promtool("check", "rules", "alerts.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


@needs_promtool
def test_alert_rules_pass_their_promtool_unit_tests() -> None:
    result = _promtool("test", "rules", "alerts_test.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


@needs_promtool
def test_prometheus_configuration_passes_promtool_check() -> None:
    result = _promtool("check", "config", "prometheus.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def _alert_names() -> set[str]:
    rules = yaml.safe_load((PROMETHEUS_DIR / "alerts.yml").read_text(encoding="utf-8"))
    return {rule["alert"] for group in rules["groups"] for rule in group["rules"]}


def test_every_alert_has_a_firing_and_a_silent_unit_test_case() -> None:
    tests = yaml.safe_load((PROMETHEUS_DIR / "alerts_test.yml").read_text(encoding="utf-8"))
    firing: set[str] = set()
    silent: set[str] = set()
    for case in tests["tests"]:
        for check in case.get("alert_rule_test", []):
            (firing if check.get("exp_alerts") else silent).add(check["alertname"])
    alerts = _alert_names()
    assert alerts >= {
        "ConsumerLagGrowing", "RejectionRateSpike", "RegistrationsStalled", "BudgetLow",
        "BillUnpaidPastDue", "DiscrepanciesOpen", "ContributionsHeld", "ServiceDown",
    }
    assert alerts - firing == set(), "alerts without a firing case"
    assert alerts - silent == set(), "alerts without a not-firing case"
    assert (firing | silent) <= alerts, "tests of alerts that do not exist"


# --- a real Prometheus server ----------------------------------------------------------------


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def serve_metrics(registry: CollectorRegistry) -> Iterator[str]:
    """A tiny HTTP server answering /metrics from ``registry``; yields host:port."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (the http.server API)
            if self.path != "/metrics":
                self.send_error(404)
                return
            body = generate_latest(registry)
            self.send_response(200)
            self.send_header("Content-Type", CONTENT_TYPE_LATEST)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # quiet
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, name="metrics-server", daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@dataclass
class PrometheusServer:
    url: str
    log: Path

    def get(self, path: str, **params: str) -> dict[str, Any]:
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        try:
            with urllib.request.urlopen(f"{self.url}{path}{query}", timeout=5) as response:
                return dict(json.load(response))
        except urllib.error.HTTPError as exc:  # 4xx with a JSON error body (bad query)
            return dict(json.loads(exc.read() or b"{}"))

    def query(self, expr: str) -> dict[str, Any]:
        return self.get("/api/v1/query", query=expr)

    def log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]


def wait_for(
    condition: Callable[[], Any], timeout: float, what: str, server: PrometheusServer
) -> Any:
    """Poll ``condition`` until it returns something truthy, for at most ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError, ValueError):
            result = condition()
            if result:
                return result
        time.sleep(0.2)
    pytest.fail(f"{what} within {timeout:.0f}s; prometheus log:\n{server.log_tail()}")


@contextlib.contextmanager
def run_prometheus(
    workdir: Path, jobs: dict[str, list[str]], rule_files: tuple[Path, ...] = ()
) -> Iterator[PrometheusServer]:
    """Start ``prometheus`` on a free loopback port scraping ``jobs`` every second."""
    assert PROMETHEUS is not None
    workdir.mkdir(parents=True, exist_ok=True)
    config = {
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(path) for path in rule_files],
        "scrape_configs": [
            {"job_name": job, "static_configs": [{"targets": targets}]}
            for job, targets in jobs.items()
        ],
    }
    config_file = workdir / "prometheus.yml"
    config_file.write_text(yaml.safe_dump(config), encoding="utf-8")
    port = _free_port()
    log = workdir / "prometheus.log"
    server = PrometheusServer(url=f"http://127.0.0.1:{port}", log=log)
    with log.open("wb") as log_file:
        process = subprocess.Popen(
            [
                PROMETHEUS,
                f"--config.file={config_file}",
                f"--storage.tsdb.path={workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--log.level=warn",
            ],
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
        try:

            def ready() -> bool:
                if process.poll() is not None:
                    pytest.fail(f"prometheus exited ({process.returncode}):\n{server.log_tail()}")
                with urllib.request.urlopen(f"{server.url}/-/ready", timeout=2) as response:
                    return bool(response.status == 200)

            wait_for(ready, START_TIMEOUT, "prometheus was not ready", server)
            yield server
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


def _registry_with_iuran_metrics() -> CollectorRegistry:
    """A fresh registry with a few of the metrics the services define, with demo figures."""
    registry = CollectorRegistry()

    def counter(definition: Counter) -> Counter:
        return Counter(definition._name, definition._documentation, definition._labelnames,
                       registry=registry)

    def gauge(definition: Gauge) -> Gauge:
        return Gauge(definition._name, definition._documentation, definition._labelnames,
                     registry=registry)

    counter(metrics.EVENTS_CONSUMED).labels("validator", "iuran.registrations.v1").inc(25_808)
    counter(metrics.CONTRIBUTIONS_BOOKED_IDR).labels("malang-2025").inc(25_808 * 12 * 16_800)
    budget = ("malang-2025", "DBHCHT", "2025")
    gauge(metrics.BUDGET_ALLOCATED_IDR).labels(*budget).set(5_300_000_000)
    gauge(metrics.BUDGET_REMAINING_IDR).labels(*budget).set(5_300_000_000 - 25_808 * 12 * 16_800)
    gauge(metrics.ACTIVE_WORKERS).labels("malang-2025").set(25_808)
    gauge(metrics.COVERAGE_RATIO).labels("malang-2025").set((178_611 + 25_808) / 490_700)
    gauge(metrics.COVERAGE_TARGET_RATIO).labels("malang-2025").set(0.4123)
    gauge(metrics.SERVICE_READY).labels("validator").set(1)
    return registry


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrometheusServer]:
    if PROMETHEUS is None:
        pytest.skip("prometheus is not installed (apt-get install prometheus)")
    workdir = tmp_path_factory.mktemp("prometheus")
    with (
        serve_metrics(_registry_with_iuran_metrics()) as target,
        run_prometheus(
            workdir, {"iuran-test": [target]}, rule_files=(PROMETHEUS_DIR / "alerts.yml",)
        ) as server,
    ):
        yield server


def _vector(server: PrometheusServer, expr: str) -> list[dict[str, Any]]:
    body = server.query(expr)
    assert body.get("status") == "success", f"{expr}: {body}"
    return list(body["data"]["result"])


@needs_prometheus
def test_prometheus_scrapes_iuran_metrics_and_answers_queries(
    prometheus: PrometheusServer,
) -> None:
    expr = 'iuran_events_consumed_total{job="iuran-test", service="validator"}'
    result = wait_for(lambda: _vector(prometheus, expr), SCRAPE_TIMEOUT,
                      f"no sample of {expr}", prometheus)
    assert len(result) == 1
    assert result[0]["metric"]["topic"] == "iuran.registrations.v1"
    assert float(result[0]["value"][1]) == 25_808

    (up,) = _vector(prometheus, 'up{job="iuran-test"}')
    assert up["value"][1] == "1"

    # the quantity behind BudgetLow, computed by Prometheus from the scraped gauges
    (share,) = _vector(
        prometheus,
        "iuran_budget_remaining_idr{programme='malang-2025'}"
        " / iuran_budget_allocated_idr{programme='malang-2025'}",
    )
    expected = (5_300_000_000 - 25_808 * 12 * 16_800) / 5_300_000_000
    assert math.isclose(float(share["value"][1]), expected, rel_tol=1e-9)
    (booked,) = _vector(prometheus, "sum(iuran_contributions_booked_idr_total)")
    assert float(booked["value"][1]) == 5_202_892_800  # 25,808 workers x 12 months x Rp16,800


@needs_prometheus
def test_prometheus_loads_and_evaluates_every_alert_rule(prometheus: PrometheusServer) -> None:
    def evaluated_rules() -> list[dict[str, Any]]:
        body = prometheus.get("/api/v1/rules")
        rules = [rule for group in body["data"]["groups"] for rule in group["rules"]]
        if rules and all(not rule["lastEvaluation"].startswith("0001-") for rule in rules):
            return rules
        return []

    rules = wait_for(evaluated_rules, SCRAPE_TIMEOUT, "the alert rules were not evaluated",
                     prometheus)
    assert {rule["name"] for rule in rules} == _alert_names()
    for rule in rules:
        assert rule["health"] == "ok", f"{rule['name']}: {rule.get('lastError')}"
    # healthy figures: nothing fires (the budget has 1.8% left: BudgetLow waits its 5 min)
    firing = [alert for rule in rules for alert in rule["alerts"] if alert["state"] == "firing"]
    assert firing == []


GRAFANA_VARIABLES = {
    "$__rate_interval": "1m",
    "$__interval": "15s",
    "$__range": "5m",
    "$programme": ".*",
}


def _dashboard_queries() -> list[tuple[str, str]]:
    queries = []
    for path in sorted(DASHBOARDS_DIR.glob("*.json")):
        board = json.loads(path.read_text(encoding="utf-8"))
        panels = [p for panel in board["panels"] for p in (panel, *panel.get("panels", []))]
        for panel in panels:
            for target in panel.get("targets", []):
                expr = target["expr"]
                for variable, value in GRAFANA_VARIABLES.items():
                    expr = expr.replace(variable, value)
                queries.append((f"{path.name}: {panel['title']}", expr))
    return queries


@needs_prometheus
def test_prometheus_accepts_every_dashboard_query(prometheus: PrometheusServer) -> None:
    queries = _dashboard_queries()
    assert len(queries) > 20
    for where, expr in queries:
        assert "$" not in expr, f"{where}: unknown Grafana variable in {expr}"
        body = prometheus.query(expr)
        assert body.get("status") == "success", f"{where}: {expr}: {body.get('error')}"
    (active,) = _vector(prometheus, "sum(iuran_active_workers)")  # only the leader exports
    assert float(active["value"][1]) == 25_808
