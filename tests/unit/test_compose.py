"""docker-compose.yml and the files it wires, checked without a Docker engine.

Everything the stack names must exist: each command is a real `iuran` sub-command with
valid arguments, each IURAN_* variable a setting, each mounted path a file in the
repository, each port the service's port setting; Prometheus scrapes the compose services,
Grafana's dashboards use the provisioned datasource, and every metric named in alerts and
dashboards is one that services/runtime/metrics.py defines.
"""

from __future__ import annotations

import argparse
import json
import os
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import Counter, Gauge, Histogram
from prometheus_client.metrics import MetricWrapperBase

from services.cli.main import build_parser
from services.runtime import metrics
from services.runtime.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
DOCKERFILE = ROOT / "deploy" / "Dockerfile"
PROMETHEUS_DIR = ROOT / "deploy" / "prometheus"
GRAFANA_DIR = ROOT / "deploy" / "grafana"

# Read by the API (its own setting, parsed there) rather than by the shared Settings.
EXTRA_IURAN_VARIABLES = {"IURAN_API_TOKENS"}
# `${NAME}`, `${NAME:-default}`, `${NAME-default}`, `${NAME:?error}`, `${NAME?error}`;
# `$${...}` is an escaped dollar sign, not an interpolation.
INTERPOLATION = re.compile(
    r"(?<!\$)\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}"
)
PORT_SETTING = {
    "validator": "IURAN_VALIDATOR_PORT",
    "ledger": "IURAN_LEDGER_PORT",
    "projector": "IURAN_PROJECTOR_PORT",
    "api": "IURAN_API_PORT",
}


def _load_compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    assert isinstance(data, dict) and isinstance(data.get("services"), dict)
    return data


COMPOSE = _load_compose()
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
# The services built from deploy/Dockerfile, i.e. those that run `iuran`.
IURAN_SERVICES = sorted(name for name, spec in SERVICES.items() if "build" in spec)


def _env_example() -> dict[str, str]:
    values = {}
    for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, value = line.partition("=")
        assert sep, f".env.example: not NAME=value: {line!r}"
        values[name.strip()] = value.strip().strip("'\"")
    return values


def _interpolate(value: str, env: dict[str, str]) -> str:
    """What compose substitutes, with .env.example as the .env file."""

    def substitute(match: re.Match[str]) -> str:
        name = match.group("name")
        if name in env:
            return env[name]
        return match.group("arg") if match.group("op") in (":-", "-") else ""

    return INTERPOLATION.sub(substitute, value).replace("$$", "$")


def _environment(spec: dict[str, Any]) -> dict[str, str]:
    env = spec.get("environment") or {}
    if isinstance(env, list):  # ["NAME=value", ...]
        env = dict(item.split("=", 1) for item in env)
    return {str(name): str(value) for name, value in env.items()}


def _command(spec: dict[str, Any]) -> list[str]:
    command = spec.get("command")
    assert isinstance(command, list), "write commands in exec form (a YAML list)"
    return [str(part) for part in command]


def _run_service(name: str) -> str | None:
    """The service a compose service runs with `iuran service NAME`, if any."""
    command = _command(SERVICES[name])
    return command[2] if command[1:2] == ["service"] and len(command) > 2 else None


def _container_ports(spec: dict[str, Any]) -> list[int]:
    ports = []
    for entry in spec.get("ports") or []:
        if isinstance(entry, dict):  # long syntax
            ports.append(int(entry["target"]))
        else:  # [host_ip:][host_port:]container_port[/protocol]
            ports.append(int(str(entry).split("/")[0].rsplit(":", 1)[-1]))
    ports.extend(int(str(entry).split("/")[0]) for entry in spec.get("expose") or [])
    return ports


def _subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    raise AssertionError("the iuran parser has no sub-commands")


# --- the iuran services -------------------------------------------------------------------


def test_the_stack_has_infrastructure_services_and_a_one_shot_migration() -> None:
    assert {"kafka", "postgres", "prometheus", "grafana"} <= set(SERVICES)
    assert {"migrate", "validator", "ledger", "projector", "api"} <= set(IURAN_SERVICES)
    assert _command(SERVICES["migrate"])[:2] == ["iuran", "migrate"]
    assert SERVICES["migrate"].get("restart") == "no"
    assert {_run_service(name) for name in IURAN_SERVICES} >= set(PORT_SETTING)


@pytest.mark.parametrize("name", IURAN_SERVICES)
def test_each_iuran_service_is_built_from_the_one_dockerfile(name: str) -> None:
    build = SERVICES[name]["build"]
    context = ROOT / build["context"]
    assert context.resolve() == ROOT
    assert (context / build["dockerfile"]).resolve() == DOCKERFILE
    assert DOCKERFILE.is_file()
    images = {SERVICES[other].get("image") for other in IURAN_SERVICES}
    assert len(images) == 1, f"one image for every iuran service, got {images}"


@pytest.mark.parametrize("name", IURAN_SERVICES)
def test_each_command_is_a_real_iuran_subcommand(
    name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    command = _command(SERVICES[name])
    assert command[0] == "iuran", f"{name}: the command must run the iuran console script"
    subcommands = _subcommands()
    assert command[1] in subcommands, (
        f"{name}: `iuran {command[1]}` is not a sub-command (have: {sorted(subcommands)})"
    )
    rejected: int | str | None = None
    try:
        build_parser().parse_args(command[1:])
    except SystemExit as exc:
        rejected = exc.code
    assert rejected is None, (
        f"{name}: `{' '.join(command)}` is rejected by the CLI (exit {rejected}): "
        f"{capsys.readouterr().err.strip()}"
    )


@pytest.mark.parametrize("name", IURAN_SERVICES)
def test_each_iuran_variable_is_a_setting_and_the_values_validate(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    fields = {f"IURAN_{field.upper()}" for field in Settings.model_fields}
    env = _environment(SERVICES[name])
    unknown = sorted(set(env) - fields - EXTRA_IURAN_VARIABLES)
    assert not [v for v in unknown if v.startswith("IURAN_")], f"{name}: not settings: {unknown}"
    assert env.get("IURAN_ENVIRONMENT") == "production"
    assert env.get("IURAN_HTTP_HOST") == "0.0.0.0", f"{name}: must listen beyond loopback"

    example = _env_example()
    for variable in [v for v in os.environ if v.startswith("IURAN_")]:
        monkeypatch.delenv(variable)
    for variable, value in env.items():
        if variable in fields:
            monkeypatch.setenv(variable, _interpolate(value, example))
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.environment == "production"
    assert settings.kafka_bootstrap == "kafka:9092"
    assert settings.database_url and settings.database_url.startswith("postgresql://")
    assert "@postgres:5432/" in settings.database_url
    assert (settings.partitions, settings.programmes_dir) == (
        int(example.get("IURAN_PARTITIONS", "4")),
        Path("/etc/iuran/programmes"),
    )


def test_dockerfile_environment_names_settings() -> None:
    fields = {f"IURAN_{field.upper()}" for field in Settings.model_fields}
    text = DOCKERFILE.read_text(encoding="utf-8")
    names = set(re.findall(r"\b(IURAN_[A-Z0-9_]+)=", text))
    assert names, "the Dockerfile sets the production defaults"
    assert names <= fields, f"not settings: {sorted(names - fields)}"


@pytest.mark.parametrize("name", sorted(PORT_SETTING))
def test_port_mappings_and_healthchecks_use_the_service_port_setting(name: str) -> None:
    (compose_name,) = [n for n in IURAN_SERVICES if _run_service(n) == name]
    spec = SERVICES[compose_name]
    port = Settings(_env_file=None).port_of(name)  # type: ignore[call-arg]
    env = _environment(spec)
    if PORT_SETTING[name] in env:
        assert int(env[PORT_SETTING[name]]) == port
    container_ports = _container_ports(spec)
    assert container_ports, f"{compose_name}: publish or expose port {port}"
    assert set(container_ports) == {port}, f"{compose_name}: {container_ports} != {port}"
    check = " ".join(spec["healthcheck"]["test"])
    assert f"127.0.0.1:{port}/readyz" in check, f"{compose_name}: healthcheck on /readyz"


def test_the_migration_publishes_no_port() -> None:
    assert not _container_ports(SERVICES["migrate"])


# --- depends_on, files, volumes -------------------------------------------------------------


def test_depends_on_conditions_point_at_services_that_can_meet_them() -> None:
    seen = 0
    for name, spec in SERVICES.items():
        depends = spec.get("depends_on") or {}
        assert isinstance(depends, dict), f"{name}: depends_on needs conditions (long syntax)"
        for target, rule in depends.items():
            assert target in SERVICES, f"{name} depends on unknown service {target}"
            condition = rule.get("condition")
            if condition == "service_healthy":
                assert "healthcheck" in SERVICES[target], f"{target} has no healthcheck"
            elif condition == "service_completed_successfully":
                assert SERVICES[target].get("restart") == "no", f"{target} is not one-shot"
            else:
                pytest.fail(f"{name} -> {target}: condition {condition!r}")
            seen += 1
    assert seen >= 10


def test_every_long_running_iuran_service_waits_for_kafka_and_the_migration() -> None:
    for name in IURAN_SERVICES:
        if name == "migrate":
            assert SERVICES[name]["depends_on"]["postgres"]["condition"] == "service_healthy"
            continue
        depends = SERVICES[name]["depends_on"]
        assert depends["kafka"]["condition"] == "service_healthy"
        assert depends["migrate"]["condition"] == "service_completed_successfully"


def test_every_mounted_file_exists_and_named_volumes_are_declared() -> None:
    declared = set(COMPOSE.get("volumes") or {})
    mounted = 0
    for name, spec in SERVICES.items():
        for volume in spec.get("volumes") or []:
            source = volume["source"] if isinstance(volume, dict) else str(volume).split(":")[0]
            if source.startswith((".", "/")):
                path = (ROOT / source).resolve()
                assert path.exists(), f"{name} mounts {source}, which is not in the repository"
                assert ROOT in path.parents or path == ROOT, f"{name}: {source} outside the repo"
                mounted += 1
            else:
                assert source in declared, f"{name}: named volume {source} is not declared"
    assert mounted >= 5


def test_dockerfile_copies_only_existing_paths_that_the_dockerignore_lets_in() -> None:
    ignore = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert ignore[0] == "**", ".dockerignore starts by excluding everything (.env stays out)"
    allowed = {line[1:].rstrip("/") for line in ignore if line.startswith("!")}
    copies = re.findall(r"^COPY\s+(?!--from)(.+)$", DOCKERFILE.read_text(), flags=re.MULTILINE)
    assert copies
    for copy in copies:
        *sources, _destination = copy.split()
        for source in sources:
            if "*" in source:  # optional files (README.md*)
                continue
            assert (ROOT / source).exists(), f"COPY {source}: not in the repository"
            assert source.rstrip("/") in allowed, f"COPY {source}: excluded by .dockerignore"
    assert "pip install ." in DOCKERFILE.read_text()


# --- secrets and .env ------------------------------------------------------------------------


def test_each_interpolated_variable_is_in_env_example() -> None:
    text = COMPOSE_FILE.read_text(encoding="utf-8")
    referenced = {match.group("name") for match in INTERPOLATION.finditer(text)}
    assert referenced, "secrets come from .env through ${VAR} interpolation"
    missing = sorted(referenced - set(_env_example()))
    assert not missing, f"add to .env.example: {missing}"


def test_secrets_are_required_and_only_placeholders_are_checked_in() -> None:
    text = COMPOSE_FILE.read_text(encoding="utf-8")
    example = _env_example()
    secrets = [name for name in example if name.endswith(("PASSWORD", "TOKENS"))]
    assert {"POSTGRES_PASSWORD", "GRAFANA_ADMIN_PASSWORD", "IURAN_API_TOKENS"} <= set(secrets)
    for match in INTERPOLATION.finditer(text):
        if match.group("name") in secrets:
            assert match.group("op") == ":?", f"{match.group(0)}: a secret has no default"
    for name in secrets:
        assert "change-me" in example[name], f".env.example: {name} is not a placeholder"
    tokens = json.loads(example["IURAN_API_TOKENS"])
    assert isinstance(tokens, list) and tokens
    gitignored = (ROOT / ".gitignore").read_text(encoding="utf-8").split()
    assert ".env" in gitignored


# --- Prometheus and Grafana wiring -------------------------------------------------------


def test_prometheus_scrapes_every_iuran_service_by_compose_name_and_port() -> None:
    config = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text(encoding="utf-8"))
    targets = {
        target
        for job in config["scrape_configs"]
        if job["job_name"].startswith("iuran-")
        for static in job["static_configs"]
        for target in static["targets"]
    }
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    expected = {
        f"{compose_name}:{settings.port_of(service)}"
        for compose_name in IURAN_SERVICES
        if (service := _run_service(compose_name))
    }
    assert targets == expected
    for rule_file in config["rule_files"]:
        assert (PROMETHEUS_DIR / rule_file).is_file()
    mounts = [str(v) for v in SERVICES["prometheus"]["volumes"]]
    assert "./deploy/prometheus:/etc/prometheus:ro" in mounts
    assert "--config.file=/etc/prometheus/prometheus.yml" in SERVICES["prometheus"]["command"]


def _grafana_mount(target: str) -> Path:
    for volume in SERVICES["grafana"]["volumes"]:
        source, _, rest = str(volume).partition(":")
        if rest.split(":")[0] == target:
            return ROOT / source
    raise AssertionError(f"grafana mounts nothing at {target}")


def _datasource_uid() -> str:
    provisioning = _grafana_mount("/etc/grafana/provisioning")
    files = sorted((provisioning / "datasources").glob("*.yml"))
    assert files
    (source,) = [
        ds for f in files for ds in yaml.safe_load(f.read_text())["datasources"]
    ]
    assert source["type"] == "prometheus"
    assert source["url"] == "http://prometheus:9090"
    return str(source["uid"])


def _dashboards() -> dict[str, dict[str, Any]]:
    provisioning = _grafana_mount("/etc/grafana/provisioning")
    (provider,) = [
        p
        for f in sorted((provisioning / "dashboards").glob("*.yml"))
        for p in yaml.safe_load(f.read_text())["providers"]
    ]
    directory = _grafana_mount(provider["options"]["path"])
    return {
        path.name: json.loads(path.read_text(encoding="utf-8"))
        for path in sorted(directory.glob("*.json"))
    }


def _panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    panels = []
    for panel in dashboard["panels"]:
        panels.append(panel)
        panels.extend(panel.get("panels", []))
    return panels


def test_grafana_dashboards_are_provisioned_with_uids_and_the_datasource_by_uid() -> None:
    uid = _datasource_uid()
    dashboards = _dashboards()
    assert {"operations.json", "coverage-budget.json"} <= set(dashboards)
    uids = [board["uid"] for board in dashboards.values()]
    assert all(uids) and len(set(uids)) == len(uids)
    for name, board in dashboards.items():
        for panel in _panels(board):
            if panel["type"] == "row":
                continue
            assert panel["datasource"] == {"type": "prometheus", "uid": uid}, (name, panel)
            assert panel["targets"], f"{name}: {panel['title']} has no query"
            for target in panel["targets"]:
                assert target["datasource"]["uid"] == uid
        for variable in board["templating"]["list"]:
            if variable["type"] == "query":
                assert variable["datasource"]["uid"] == uid
    home = SERVICES["grafana"]["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert Path(home).name in dashboards


def _queried(name: str) -> dict[str, set[str]]:
    """Each metric a dashboard's panels query, with the titles of the panels that do."""
    found: dict[str, set[str]] = {}
    for panel in _panels(_dashboards()[name]):
        for target in panel.get("targets", []):
            for metric in re.findall(r"\b(?:iuran_[a-z0-9_]+|up)\b(?=\s*[{\[)])",
                                     target["expr"]):
                found.setdefault(metric, set()).add(panel["title"])
    return found


# What operations and finance watch, as the metrics whose panels show it.
OPERATIONS_NEEDS = {
    "services up": "up",
    "events consumed": "iuran_events_consumed_total",
    "rejections by error code": "iuran_registrations_rejected_total",
    "lag per partition": "iuran_consumer_lag_messages",
    "ledger write latency": "iuran_ledger_write_seconds_bucket",
    "event age at booking": "iuran_event_age_seconds_bucket",
    "open discrepancies": "iuran_discrepancies_open",
    "contributions held (awaiting budget)": "iuran_contributions_held_total",
    "dead letters": "iuran_dead_letters_total",
    "contributions the ledger could not place": "iuran_contributions_unbookable_total",
}
COVERAGE_NEEDS = {
    "active workers": "iuran_active_workers",
    "coverage ratio": "iuran_coverage_ratio",
    "the target": "iuran_coverage_target_ratio",
    "budget allocated": "iuran_budget_allocated_idr",
    "budget remaining": "iuran_budget_remaining_idr",
    "contributions booked": "iuran_contributions_booked_total",
    "credit at BPJS": "iuran_credits_carried_over_idr",
}


@pytest.mark.parametrize(("board", "needs"), [("operations.json", OPERATIONS_NEEDS),
                                              ("coverage-budget.json", COVERAGE_NEEDS)])
def test_dashboards_query_what_operations_and_finance_watch(
    board: str, needs: dict[str, str]
) -> None:
    queried = _queried(board)
    missing = {what: metric for what, metric in needs.items() if metric not in queried}
    assert not missing, f"{board}: no panel queries {missing}"


def test_coverage_and_its_target_are_drawn_in_one_panel() -> None:
    queried = _queried("coverage-budget.json")
    assert queried["iuran_coverage_ratio"] & queried["iuran_coverage_target_ratio"]


def _metric_sample_names() -> set[str]:
    names = set()
    for value in vars(metrics).values():
        if not isinstance(value, MetricWrapperBase):
            continue
        base = value._name
        if isinstance(value, Counter):
            names |= {f"{base}_total", f"{base}_created"}
        elif isinstance(value, Histogram):
            names |= {f"{base}_bucket", f"{base}_count", f"{base}_sum", f"{base}_created"}
        elif isinstance(value, Gauge):
            names.add(base)
        else:  # pragma: no cover - a new metric type: extend this test
            pytest.fail(f"unexpected metric type of {base}")
    return names


def _expressions() -> dict[str, str]:
    found = {}
    rules = yaml.safe_load((PROMETHEUS_DIR / "alerts.yml").read_text(encoding="utf-8"))
    for group in rules["groups"]:
        for rule in group["rules"]:
            found[f"alert {rule['alert']}"] = rule["expr"]
    for name, board in _dashboards().items():
        for panel in _panels(board):
            for target in panel.get("targets", []):
                found[f"{name}: {panel['title']} {target['refId']}"] = target["expr"]
    return found


def test_every_iuran_metric_in_alerts_and_dashboards_is_defined() -> None:
    defined = _metric_sample_names()
    used = {
        (where, name)
        for where, expr in _expressions().items()
        for name in re.findall(r"\biuran_[a-z0-9_]+", expr)
    }
    assert used
    unknown = sorted((where, name) for where, name in used if name not in defined)
    assert not unknown, f"not defined in services/runtime/metrics.py: {unknown}"


def _metric_objects() -> dict[str, tuple[str, MetricWrapperBase]]:
    """Each sample name a query may use -> (the name in services/runtime/metrics.py, the
    metric)."""
    found: dict[str, tuple[str, MetricWrapperBase]] = {}
    for attribute, value in vars(metrics).items():
        if not isinstance(value, MetricWrapperBase):
            continue
        base = value._name
        samples = {base}
        if isinstance(value, Counter):
            samples = {f"{base}_total", f"{base}_created"}
        elif isinstance(value, Histogram):
            samples = {f"{base}_bucket", f"{base}_count", f"{base}_sum", f"{base}_created"}
        for sample in samples:
            found[sample] = (attribute, value)
    return found


def _service_sources() -> str:
    """The code of every service except the module that defines the metrics."""
    return "\n".join(path.read_text(encoding="utf-8")
                     for path in sorted((ROOT / "services").rglob("*.py"))
                     if path != ROOT / "services" / "runtime" / "metrics.py")


def test_every_metric_in_alerts_and_dashboards_is_set_by_a_service() -> None:
    objects, code = _metric_objects(), _service_sources()
    unset = sorted({(where, name)
                    for where, expr in _expressions().items()
                    for name in re.findall(r"\biuran_[a-z0-9_]+", expr)
                    if name in objects
                    and not re.search(rf"\bmetrics\.{objects[name][0]}\b", code)})
    assert not unset, f"queried, but no service ever sets it (an empty panel): {unset}"


def test_every_label_a_query_groups_or_filters_by_is_a_label_of_its_metrics() -> None:
    objects = _metric_objects()
    wrong = []
    for where, expr in _expressions().items():
        names = [n for n in re.findall(r"\biuran_[a-z0-9_]+", expr) if n in objects]
        grouped = {label.strip() for labels in re.findall(r"\bby\s*\(([^)]*)\)", expr)
                   for label in labels.split(",") if label.strip()}
        for name in names:
            metric = objects[name][1]
            has = set(metric._labelnames) | ({"le"} if name.endswith("_bucket") else set())
            filtered: set[str] = set()
            for selector in re.findall(rf"\b{name}\{{([^}}]*)\}}", expr):
                filtered |= set(re.findall(r"([a-z_]+)\s*!?=~?", selector))
            if not (grouped | filtered) <= has:
                wrong.append((where, name, sorted((grouped | filtered) - has)))
    assert not wrong, f"labels the metric does not have: {wrong}"


def test_every_alert_has_a_runbook_section_in_the_operations_guide() -> None:
    guide = (ROOT / "docs" / "operations.md").read_text(encoding="utf-8")
    anchors = {
        re.sub(r"[^a-z0-9 -]", "", line.lstrip("#").strip().lower()).replace(" ", "-")
        for line in guide.splitlines()
        if line.startswith("#")
    }
    rules = yaml.safe_load((PROMETHEUS_DIR / "alerts.yml").read_text(encoding="utf-8"))
    for group in rules["groups"]:
        for rule in group["rules"]:
            runbook = rule["annotations"]["runbook"]
            path, _, anchor = runbook.partition("#")
            assert path == "docs/operations.md", f"{rule['alert']}: runbook {runbook}"
            assert anchor in anchors, f"{rule['alert']}: no section #{anchor} in {path}"
            assert rule["labels"]["severity"] in {"warning", "critical"}
