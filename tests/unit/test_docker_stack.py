"""The production stack cannot run here (no Docker engine); check it as data."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import yaml

from streams.config import Config, load_config

DOCKER = Path(__file__).resolve().parents[2] / "docker"


def compose() -> dict:
    return yaml.safe_load((DOCKER / "compose.yaml").read_text())


def test_compose_parses_with_the_expected_services() -> None:
    services = compose()["services"]
    assert {"kafka", "kafka-init", "clickhouse", "worker", "simulator", "prometheus", "alertmanager", "grafana"} <= set(services)
    assert services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"  # KRaft, no ZooKeeper
    assert "zookeeper" not in services


def test_every_referenced_file_exists() -> None:
    for name, service in compose()["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (DOCKER / source).exists(), f"{name}: {source}"
        build = service.get("build")
        if build:
            context = (DOCKER / build["context"]).resolve()
            assert (context / build["dockerfile"]).exists()
            for line in (context / build["dockerfile"]).read_text().splitlines():
                if line.startswith("COPY "):
                    for src in line.split()[1:-1]:
                        assert (context / src).exists(), src
    provisioning = yaml.safe_load((DOCKER / "grafana/provisioning/dashboards/dashboards.yaml").read_text())
    assert provisioning["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"
    for dashboard in (DOCKER / "grafana/dashboards").glob("*.json"):
        assert json.loads(dashboard.read_text())["panels"]


def test_worker_environment_is_real_configuration() -> None:
    env = compose()["services"]["worker"]["environment"]
    defaults = Config()
    known = {
        f"YUJING_{s.name}_{f.name}".upper() for s in dataclasses.fields(defaults) for f in dataclasses.fields(getattr(defaults, s.name))
    }
    assert set(env) <= known, set(env) - known
    config = load_config(None, environ={k: str(v) for k, v in env.items()})
    assert config.kafka.bootstrap == "kafka:9092"
    kafka_listeners = compose()["services"]["kafka"]["environment"]["KAFKA_ADVERTISED_LISTENERS"]
    assert kafka_listeners.endswith(config.kafka.bootstrap)
    init = compose()["services"]["kafka-init"]["environment"]
    assert int(init["PARTITIONS"]) == config.kafka.partitions  # topics co-partitioned as the worker expects
    script = (DOCKER / "kafka/create-topics.sh").read_text()
    for topic in (*config.kafka.topics(), *(t + config.kafka.dlq_suffix for t in config.kafka.topics())):
        assert topic in script


def test_prometheus_scrapes_the_worker_metrics_port() -> None:
    env = compose()["services"]["worker"]["environment"]
    prom = yaml.safe_load((DOCKER / "prometheus/prometheus.yml").read_text())
    sd = prom["scrape_configs"][0]["dns_sd_configs"][0]
    assert sd["names"] == ["worker"] and sd["port"] == int(env["YUJING_METRICS_PORT"])


def test_alert_delivery_settings_agree_with_the_stack() -> None:
    services = compose()["services"]
    config = load_config(None, environ={k: str(v) for k, v in services["worker"]["environment"].items()})
    am_port = services["alertmanager"]["ports"][0].split(":")[1]
    assert config.alertmanager.url == f"http://alertmanager:{am_port}"
    assert "{alert_id}" in config.alertmanager.evidence_url
    assert f" {config.kafka.alerts_topic};" in (DOCKER / "kafka/create-topics.sh").read_text()  # created with the inputs
    silences_dir = str(Path(config.alerting.silences).parent)
    assert any(v.endswith(":" + silences_dir) for v in services["worker"]["volumes"])  # one log for every worker
    prom = yaml.safe_load((DOCKER / "prometheus/prometheus.yml").read_text())
    mounted = {v.split(":")[1]: v.split(":")[0] for v in services["prometheus"]["volumes"] if v.startswith(".")}
    for rule_file in prom["rule_files"]:
        directory, name = rule_file.rsplit("/", 1)
        assert (DOCKER / mounted[directory] / name).exists(), rule_file
    dashboards = {json.loads(p.read_text())["uid"] for p in (DOCKER / "grafana/dashboards").glob("*.json")}
    assert config.alertmanager.evidence_url.split("/d/")[1].split("?")[0] in dashboards


def test_every_long_running_service_has_a_healthcheck_and_the_worker_keeps_its_state_and_follows_the_rules_topic() -> None:
    services = compose()["services"]
    for name in ("kafka", "clickhouse", "worker", "prometheus", "alertmanager", "grafana"):
        assert services[name].get("healthcheck", {}).get("test"), name
    worker = services["worker"]
    assert "/healthz" in " ".join(worker["healthcheck"]["test"])
    assert worker["depends_on"]["clickhouse"]["condition"] == "service_healthy"
    config = load_config(None, environ={k: str(v) for k, v in worker["environment"].items()})
    assert "{hostname}" in config.kafka.data_dir  # replicas never share a RocksDB directory
    assert any(v.split(":")[1] == str(Path(config.kafka.data_dir).parent) for v in worker["volumes"])
    assert config.rules.topic and f"--topic {config.rules.topic} --partitions 1" in (DOCKER / "kafka/create-topics.sh").read_text()
    named = {v.split(":")[0] for s in services.values() for v in s.get("volumes", []) if not v.startswith(".")}
    assert named <= set(compose()["volumes"]), named - set(compose()["volumes"])


def test_the_stack_runs_several_workers_only_with_cohort_rules_meeting_on_their_topic() -> None:
    """compose once ran two workers while each counted the cohort rules on its own partitions: each judged half of
    every region's complaints. Several workers are right only with the cohort topic on (the default)."""
    from rules import load_rules
    from streams.config import default_rules_dir

    worker = compose()["services"]["worker"]
    config = load_config(None, environ={k: str(v) for k, v in worker["environment"].items()})
    assert any(getattr(r, "cohort", False) for r in load_rules(default_rules_dir()).rules)
    assert worker["deploy"]["replicas"] > 1 and config.kafka.cohort_topic
    assert "--scale worker=3" in (DOCKER.parent / "README.md").read_text(encoding="utf-8")
