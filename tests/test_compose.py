"""The deployment files: docker-compose.yml, Prometheus config and rules, Grafana.

Nothing here starts a container; the files are checked against the code they deploy
(settings, stages) and against each other (mounts, scrape targets, datasource uid).
When `promtool` is on PATH (Debian: `apt-get install prometheus`) the Prometheus files
are also checked by it and the alerting rules are unit-tested with `promtool test rules`.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from pipeline.settings import ENV_PREFIX, Settings

REPO = Path(__file__).resolve().parent.parent
COMPOSE = REPO / "docker-compose.yml"
PROMETHEUS_DIR = REPO / "config" / "prometheus"
PROMETHEUS_CONFIG = PROMETHEUS_DIR / "prometheus.yml"
RULES = PROMETHEUS_DIR / "rules" / "yuqing.yml"
GRAFANA_DIR = REPO / "config" / "grafana"
DASHBOARD = GRAFANA_DIR / "dashboards" / "yuqing.json"

# DESIGN.md, Command line: `yuqing run [STAGE…]`.
STAGES = {"crawler", "persist", "classifier", "responder", "scheduler", "notifier", "web"}
SEVERITIES = {"critical", "warning", "info"}


def _load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return _load_yaml(COMPOSE)


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


def _is_yuqing(service: dict[str, Any]) -> bool:
    image = str(service.get("image", ""))
    return "build" in service or image.split(":")[0].rsplit("/", 1)[-1] == "yuqing"


def _yuqing_services(services: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {name: svc for name, svc in services.items() if _is_yuqing(svc)}


def _command(service: dict[str, Any]) -> list[str]:
    cmd = service.get("command", [])
    return shlex.split(cmd) if isinstance(cmd, str) else [str(c) for c in cmd]


def _run_stages(service: dict[str, Any]) -> list[str]:
    cmd = _command(service)
    if not cmd or cmd[0] != "run":
        return []
    return [arg for arg in cmd[1:] if not arg.startswith("-")]


def _environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        return dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {str(k): "" if v is None else str(v) for k, v in env.items()}


_INTERPOLATION = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}")


def _interpolate(value: str) -> str:
    """Compose's `${VAR:-default}` / `${VAR:?error}` with no host variable set: the
    default, or a stand-in for a required one."""

    def repl(m: re.Match[str]) -> str:
        op, arg = m.group(2), m.group(3)
        if op and op.endswith("-"):
            return arg
        if op and op.endswith("?"):
            return f"stand-in-for-{m.group(1).lower()}"
        return ""

    return _INTERPOLATION.sub(repl, value)


def _volumes(service: dict[str, Any]) -> list[tuple[str, str]]:
    """(source, target) of every volume entry, short or long syntax."""
    out = []
    for vol in service.get("volumes", []):
        if isinstance(vol, dict):
            out.append((str(vol.get("source", "")), str(vol["target"])))
        else:
            parts = str(vol).split(":")
            out.append((parts[0], parts[1]) if len(parts) > 1 else ("", parts[0]))
    return out


def _depends_on(service: dict[str, Any]) -> dict[str, dict[str, Any]]:
    deps = service.get("depends_on") or {}
    if isinstance(deps, list):
        return {name: {"condition": "service_started"} for name in deps}
    return deps


# --- docker-compose.yml -----------------------------------------------------------------


def test_compose_parses_as_compose_spec(compose: dict[str, Any]) -> None:
    assert "version" not in compose, "compose-spec files have no top-level version"
    assert isinstance(compose["services"], dict) and compose["services"]
    assert isinstance(compose.get("x-yuqing-env"), dict)
    for name in ("kafka", "postgres", "migrate", "prometheus", "grafana"):
        assert name in compose["services"], name


def test_every_stage_has_a_service(services: dict[str, dict[str, Any]]) -> None:
    deployed = {stage for svc in _yuqing_services(services).values() for stage in _run_stages(svc)}
    assert deployed == STAGES


def test_commands_name_only_design_stages(services: dict[str, dict[str, Any]]) -> None:
    for name, svc in _yuqing_services(services).items():
        cmd = _command(svc)
        assert cmd, f"{name}: the yuqing image needs a command"
        if cmd[0] == "run":
            stages = _run_stages(svc)
            assert stages, f"{name}: `run` with no stage would run every stage"
            unknown = set(stages) - STAGES
            assert not unknown, f"{name}: unknown stages {sorted(unknown)}"
        else:
            assert cmd == ["db", "upgrade"], f"{name}: unexpected command {cmd}"


def test_yuqing_services_set_only_real_settings(
    services: dict[str, dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    fields = set(Settings.model_fields)
    for name, svc in _yuqing_services(services).items():
        env = _environment(svc)
        assert env, f"{name}: no environment"
        for key in env:
            assert key.startswith(ENV_PREFIX), f"{name}: {key} is not a yuqing setting"
            assert key[len(ENV_PREFIX) :].lower() in fields, f"{name}: no setting for {key}"
        # The values must also be valid settings (types, literals, host:port).
        for key in list(os.environ):
            if key.startswith(ENV_PREFIX):
                monkeypatch.delenv(key)
        for key, value in env.items():
            monkeypatch.setenv(key, _interpolate(value))
        settings = Settings()
        assert settings.bus == "kafka", name
        assert settings.database_url and settings.database_url.startswith("postgresql"), name
        assert settings.metrics_port > 0, name
        assert settings.secret_key is not None, f"{name}: YUQING_SECRET_KEY not passed"
        # /metrics (and the web app) listen on the host of YUQING_WEB_BIND.
        assert settings.web_host == "0.0.0.0", f"{name}: Prometheus could not scrape it"
        for key in env:
            monkeypatch.delenv(key)


def test_secret_key_comes_from_the_host(compose: dict[str, Any]) -> None:
    value = str(compose["x-yuqing-env"]["YUQING_SECRET_KEY"])
    assert value.startswith("${YUQING_SECRET_KEY:?"), value


def test_depends_on_targets_exist(services: dict[str, dict[str, Any]]) -> None:
    for name, svc in services.items():
        for target, spec in _depends_on(svc).items():
            assert target in services, f"{name} depends on unknown service {target}"
            assert spec.get("condition", "service_started") in {
                "service_started",
                "service_healthy",
                "service_completed_successfully",
            }
            if spec.get("condition") == "service_healthy":
                assert "test" in services[target].get("healthcheck", {}), (
                    f"{name} waits for {target} to be healthy, but it has no healthcheck"
                )


def test_stages_wait_for_migrations(services: dict[str, dict[str, Any]]) -> None:
    assert _command(services["migrate"]) == ["db", "upgrade"]
    assert services["migrate"].get("restart") == "no"
    for name, svc in _yuqing_services(services).items():
        if name == "migrate":
            continue
        deps = _depends_on(svc)
        assert deps.get("migrate", {}).get("condition") == "service_completed_successfully", name
        assert "kafka" in deps, name


def test_scale_out_shape(services: dict[str, dict[str, Any]]) -> None:
    assert services["classifier"]["deploy"]["replicas"] == 3
    assert any(str(p).endswith("8000:8000") for p in services["web"].get("ports", []))
    assert services["kafka"]["image"].startswith("apache/kafka:")
    kafka_env = _environment(services["kafka"])
    assert "PLAINTEXT://kafka:9092" in kafka_env["KAFKA_ADVERTISED_LISTENERS"]
    assert "broker" in kafka_env["KAFKA_PROCESS_ROLES"]
    assert "controller" in kafka_env["KAFKA_PROCESS_ROLES"]
    # A topic that a client's metadata request creates gets as many partitions as the
    # ones yuqing creates, so the classifier replicas always have partitions to share.
    yuqing_env = _environment(services["classifier"])
    partitions = int(_interpolate(yuqing_env["YUQING_TOPIC_PARTITIONS"]))
    assert int(kafka_env["KAFKA_NUM_PARTITIONS"]) == partitions
    assert partitions >= services["classifier"]["deploy"]["replicas"]
    assert services["postgres"]["image"].startswith("postgres:16")
    assert "test" in services["postgres"]["healthcheck"]
    assert "${POSTGRES_PASSWORD:-yuqing}" in str(services["postgres"]["environment"])


def test_mounted_config_paths_exist(services: dict[str, dict[str, Any]]) -> None:
    mounted = 0
    for name, svc in services.items():
        for source, _target in _volumes(svc):
            if source.startswith("./config"):
                assert (REPO / source).exists(), f"{name} mounts missing {source}"
                mounted += 1
    assert mounted >= 3  # yuqing config, Prometheus, Grafana


def test_dockerfile_builds_the_yuqing_image(services: dict[str, dict[str, Any]]) -> None:
    for name, svc in _yuqing_services(services).items():
        build = svc["build"]
        dockerfile = (
            build.get("dockerfile", "Dockerfile") if isinstance(build, dict) else ("Dockerfile")
        )
        assert (REPO / dockerfile).is_file(), name
    text = (REPO / "Dockerfile").read_text(encoding="utf-8")
    assert re.search(r"^FROM python:3\.11-slim\b", text, re.M)
    assert re.search(r'^ENTRYPOINT \["yuqing"\]', text, re.M)
    user = re.findall(r"^USER\s+(\S+)", text, re.M)
    assert user and user[-1].split(":")[0] not in {"root", "0"}, "the image must not run as root"
    env_keys = re.findall(r"\b(YUQING_[A-Z_]+)=", text)
    for key in env_keys:
        assert key[len(ENV_PREFIX) :].lower() in Settings.model_fields, key


# --- Prometheus ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def prometheus() -> dict[str, Any]:
    return _load_yaml(PROMETHEUS_CONFIG)


@pytest.fixture(scope="module")
def rules() -> list[dict[str, Any]]:
    doc = _load_yaml(RULES)
    return [rule for group in doc["groups"] for rule in group["rules"]]


def test_prometheus_loads_the_rules(prometheus: dict[str, Any]) -> None:
    files = [p for pattern in prometheus["rule_files"] for p in PROMETHEUS_DIR.glob(pattern)]
    assert RULES in files


def test_prometheus_scrapes_every_stage(
    prometheus: dict[str, Any], services: dict[str, dict[str, Any]]
) -> None:
    hosts: dict[str, int] = {}
    for job in prometheus["scrape_configs"]:
        for static in job.get("static_configs", []):
            for target in static["targets"]:
                host, _, port = str(target).rpartition(":")
                hosts[host] = int(port)
        for dns in job.get("dns_sd_configs", []):
            for host in dns["names"]:
                hosts[host] = int(dns["port"])
    for name, svc in _yuqing_services(services).items():
        if not _run_stages(svc):
            continue
        assert name in hosts, f"Prometheus does not scrape {name}"
        # `yuqing run STAGE` serves /metrics on exactly YUQING_METRICS_PORT.
        port = int(_interpolate(_environment(svc)["YUQING_METRICS_PORT"]))
        assert hosts[name] == port, f"{name} is scraped on the wrong port"
    # The replicated classifier must be discovered, not a single static target.
    dns_names = {
        h
        for job in prometheus["scrape_configs"]
        for dns in job.get("dns_sd_configs", [])
        for h in dns["names"]
    }
    assert "classifier" in dns_names


def test_rules_are_complete(rules: list[dict[str, Any]]) -> None:
    assert rules
    names = [rule["alert"] for rule in rules]
    assert len(names) == len(set(names)), "duplicate alert names"
    for rule in rules:
        name = rule["alert"]
        assert str(rule.get("expr", "")).strip(), name
        assert re.fullmatch(r"\d+[smh]", str(rule.get("for", ""))), f"{name}: for"
        assert rule.get("labels", {}).get("severity") in SEVERITIES, f"{name}: severity"
        annotations = rule.get("annotations", {})
        assert annotations.get("summary") and annotations.get("description"), name


def test_rules_cover_the_operational_risks(rules: list[dict[str, Any]]) -> None:
    exprs = "\n".join(str(rule["expr"]) for rule in rules)
    for metric in (
        "up{",
        "yuqing_dlq_messages_total",
        "yuqing_consumer_lag",
        "yuqing_stage_messages_total",
        "yuqing_source_last_success_timestamp_seconds",
        "yuqing_alerts_overdue",
        "yuqing_notification_failures_total",
        "yuqing_notifications_total",
        "yuqing_notifications_oldest_pending_seconds",
    ):
        assert metric in exprs, metric


# --- Grafana ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text(encoding="utf-8"))


def _panels(panels: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for panel in panels:
        if panel.get("type") == "row":
            out.extend(_panels(panel.get("panels", [])))
        else:
            out.append(panel)
    return out


def test_dashboard_panels_query_yuqing_metrics(dashboard: dict[str, Any]) -> None:
    panels = _panels(dashboard["panels"])
    assert len(panels) >= 8
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids)), "duplicate panel ids"
    for panel in panels:
        exprs = [t.get("expr", "") for t in panel.get("targets", [])]
        assert any("yuqing_" in e for e in exprs), f"panel {panel.get('title')!r}"


def test_dashboard_shows_the_agreed_figures(dashboard: dict[str, Any]) -> None:
    exprs = "\n".join(
        t.get("expr", "") for p in _panels(dashboard["panels"]) for t in p.get("targets", [])
    )
    for needle in (
        "yuqing_stage_messages_total",
        "histogram_quantile(0.5",
        "histogram_quantile(0.99",
        "yuqing_stage_processing_seconds_bucket",
        "yuqing_consumer_lag",
        "yuqing_dlq_messages_total",
        "yuqing_crawl_items_total",
        "yuqing_crawl_errors_total",
        "yuqing_alerts_open",
        "yuqing_alerts_overdue",
        "yuqing_time_to_ack_seconds_bucket",
        "yuqing_time_to_respond_seconds_bucket",
    ):
        assert needle in exprs, needle


def test_grafana_provisioning_matches_compose(
    dashboard: dict[str, Any], services: dict[str, dict[str, Any]]
) -> None:
    datasources = _load_yaml(GRAFANA_DIR / "provisioning" / "datasources" / "prometheus.yml")
    uids = {ds["uid"] for ds in datasources["datasources"]}
    assert all(ds["url"].startswith("http://prometheus:") for ds in datasources["datasources"])
    for panel in _panels(dashboard["panels"]):
        for ref in [panel.get("datasource")] + [t.get("datasource") for t in panel["targets"]]:
            if isinstance(ref, dict):
                assert ref.get("uid") in uids, f"panel {panel['title']!r}: datasource {ref}"

    providers = _load_yaml(GRAFANA_DIR / "provisioning" / "dashboards" / "yuqing.yml")
    mounts = dict(_volumes(services["grafana"]))
    assert mounts["./config/grafana/provisioning"] == "/etc/grafana/provisioning"
    dashboards_dir = mounts["./config/grafana/dashboards"]
    assert {p["options"]["path"] for p in providers["providers"]} == {dashboards_dir}


# --- promtool (when installed) -------------------------------------------------------------

PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool not installed (apt-get install prometheus)"
)


def _promtool(*args: str) -> None:
    assert PROMTOOL is not None
    proc = subprocess.run([PROMTOOL, *args], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@needs_promtool
def test_promtool_checks_config_and_rules() -> None:
    _promtool("check", "config", str(PROMETHEUS_CONFIG))
    _promtool("check", "rules", str(RULES))


@needs_promtool
def test_dashboard_queries_are_valid_promql(dashboard: dict[str, Any], tmp_path: Path) -> None:
    grafana_vars = {
        "$__rate_interval": "1m",
        "$__interval": "1m",
        "$__range": "1h",
        "$stage": ".*",
        "$source": ".*",
    }
    records = []
    for i, panel in enumerate(_panels(dashboard["panels"])):
        for j, target in enumerate(panel["targets"]):
            expr = target["expr"]
            for var, value in grafana_vars.items():
                expr = expr.replace(var, value)
            assert "$" not in expr, f"unknown Grafana variable in {target['expr']!r}"
            records.append({"record": f"dashboard:panel{i}:target{j}", "expr": expr})
    path = tmp_path / "dashboard-rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": records}]}))
    _promtool("check", "rules", str(path))


# `promtool test rules` compares annotations too; they are prose, so the rules under test
# are a copy without them (their templates are checked by `promtool check rules`).
RULE_TESTS = """
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - series: 'up{job="yuqing", service="persist", instance="persist:9400"}'
        values: '1 1 0x10'
      - series: 'up{job="yuqing", service="classifier", instance="10.0.0.5:9400"}'
        values: '1x12'
    alert_rule_test:
      - eval_time: 3m
        alertname: YuqingProcessDown
        exp_alerts: []
      - eval_time: 5m
        alertname: YuqingProcessDown
        exp_alerts:
          - exp_labels: {severity: critical, job: yuqing, service: persist,
                         instance: "persist:9400"}
      - eval_time: 10m
        alertname: YuqingClassifierAbsent
        exp_alerts: []

  - interval: 1m
    input_series:
      - series: 'yuqing_stage_up{stage="responder", job="yuqing", service="responder",
                  instance="responder:9400"}'
        values: '1 1 0x10'
      - series: 'yuqing_stage_up{stage="persist", job="yuqing", service="persist",
                  instance="persist:9400"}'
        values: '1x12'
    alert_rule_test:
      - eval_time: 6m
        alertname: YuqingStageStopped
        exp_alerts:
          - exp_labels: {severity: critical, stage: responder, job: yuqing,
                         service: responder, instance: "responder:9400"}

  - interval: 1m
    input_series:
      - series: 'up{job="yuqing", service="classifier", instance="10.0.0.5:9400"}'
        values: '0x10'
    alert_rule_test:
      - eval_time: 10m
        alertname: YuqingClassifierAbsent
        exp_alerts:
          - exp_labels: {severity: critical, job: yuqing, service: classifier}

  - interval: 1m
    input_series:
      - series: 'yuqing_stage_messages_total{stage="classifier", outcome="ok", instance="a"}'
        values: '0+100x30'
      - series: 'yuqing_stage_messages_total{stage="classifier", outcome="dlq", instance="a"}'
        values: '0+10x30'
      - series: 'yuqing_stage_messages_total{stage="persist", outcome="ok", instance="b"}'
        values: '0+100x30'
      - series: 'yuqing_stage_messages_total{stage="persist", outcome="retried", instance="b"}'
        values: '0+10x30'
      - series: 'yuqing_dlq_messages_total{topic="posts.raw", instance="a"}'
        values: '0 0 0 1x30'
      - series: 'yuqing_dlq_messages_total{topic="alerts", instance="c"}'
        values: '0x30'
    alert_rule_test:
      - eval_time: 25m
        alertname: YuqingStageErrorRate
        exp_alerts:
          - exp_labels: {severity: warning, stage: classifier}
      - eval_time: 10m
        alertname: YuqingDeadLetters
        exp_alerts:
          - exp_labels: {severity: warning, topic: posts.raw}
      - eval_time: 25m
        alertname: YuqingDeadLetters
        exp_alerts: []

  - interval: 1m
    input_series:
      # two classifier replicas, each reporting the lag of its own partitions
      - series: 'yuqing_consumer_lag{topic="posts.raw", job="yuqing",
                  service="classifier", instance="c1"}'
        values: '0+1000x40'
      - series: 'yuqing_consumer_lag{topic="posts.raw", job="yuqing",
                  service="classifier", instance="c2"}'
        values: '0+1000x40'
      # persist is behind too, but catching up
      - series: 'yuqing_consumer_lag{topic="posts.raw", job="yuqing",
                  service="persist", instance="p1"}'
        values: '50000-100x40'
    alert_rule_test:
      - eval_time: 30m
        alertname: YuqingConsumerLagHigh
        exp_alerts:
          - exp_labels: {severity: warning, job: yuqing, service: classifier,
                         topic: posts.raw}

  - interval: 1m
    input_series:
      - series: 'yuqing_source_last_success_timestamp_seconds{source="stale", instance="c"}'
        values: '0x150'
      - series: 'yuqing_source_last_success_timestamp_seconds{source="fresh", instance="c"}'
        values: '0+60x150'
    alert_rule_test:
      - eval_time: 135m
        alertname: YuqingSourceSilent
        exp_alerts:
          - exp_labels: {severity: warning, source: stale}

  - interval: 1m
    input_series:
      - series: 'yuqing_source_blocked{source="walled", instance="c"}'
        values: '0 0 1x12'
      - series: 'yuqing_source_blocked{source="open", instance="c"}'
        values: '0x14'
    alert_rule_test:
      - eval_time: 10m
        alertname: YuqingSourceBlocked
        exp_alerts:
          - exp_labels: {severity: warning, source: walled}

  - interval: 1m
    input_series:
      # the same figure from two processes counts once
      - series: 'yuqing_alerts_overdue{department="environment", service="scheduler"}'
        values: '2x10'
      - series: 'yuqing_alerts_overdue{department="environment", service="web"}'
        values: '2x10'
      - series: 'yuqing_alerts_overdue{department="education", service="scheduler"}'
        values: '0x10'
    alert_rule_test:
      - eval_time: 10m
        alertname: YuqingAlertsOverdue
        exp_alerts:
          - exp_labels: {severity: warning, department: environment}

  - interval: 1m
    input_series:
      # e-mail fails every minute; one webhook attempt failed once and was retried
      - series: 'yuqing_notification_failures_total{channel="email", instance="n"}'
        values: '0+1x30'
      - series: 'yuqing_notification_failures_total{channel="webhook", instance="n"}'
        values: '0 1 1x30'
      - series: 'yuqing_notifications_total{channel="email", outcome="failed", instance="n"}'
        values: '0x10 1x20'
      - series: 'yuqing_notifications_total{channel="webhook", outcome="sent", instance="n"}'
        values: '0+5x30'
      - series: 'yuqing_notifications_oldest_pending_seconds{instance="n"}'
        values: '0x5 1000+60x25'
    alert_rule_test:
      - eval_time: 25m
        alertname: YuqingNotificationsFailing
        exp_alerts:
          - exp_labels: {severity: warning, channel: email}
      - eval_time: 12m
        alertname: YuqingNotificationsGivenUp
        exp_alerts:
          - exp_labels: {severity: critical, channel: email}
      - eval_time: 12m
        alertname: YuqingNotificationsDelayed
        exp_alerts:
          - exp_labels: {severity: warning}
"""


@needs_promtool
def test_alerting_rules_fire_as_intended(tmp_path: Path) -> None:
    doc = _load_yaml(RULES)
    for group in doc["groups"]:
        for rule in group["rules"]:
            rule.pop("annotations", None)
    rules_copy = tmp_path / "rules.yml"
    rules_copy.write_text(yaml.safe_dump(doc))
    tests = yaml.safe_load(RULE_TESTS)
    tests["rule_files"] = [str(rules_copy)]
    test_file = tmp_path / "rules-test.yml"
    test_file.write_text(yaml.safe_dump(tests))
    _promtool("test", "rules", str(test_file))

    names = {rule["alert"] for group in doc["groups"] for rule in group["rules"]}
    tested = {t["alertname"] for case in tests["tests"] for t in case["alert_rule_test"]}
    assert names == tested, f"rules without a unit test: {sorted(names - tested)}"


# --- compose-spec schema (when check-jsonschema is installed) -------------------------------

# The dev extra installs it into the virtual environment, which need not be on PATH.
CHECK_JSONSCHEMA = shutil.which("check-jsonschema") or shutil.which(
    "check-jsonschema", path=str(Path(sys.executable).parent)
)


@pytest.mark.skipif(CHECK_JSONSCHEMA is None, reason="check-jsonschema not installed")
def test_compose_file_matches_compose_spec_schema() -> None:
    assert CHECK_JSONSCHEMA is not None
    proc = subprocess.run(
        [CHECK_JSONSCHEMA, "--builtin-schema", "vendor.compose-spec", str(COMPOSE)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
