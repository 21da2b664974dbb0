"""Configuration: defaults ← file ← environment, with clear errors."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from streams.config import ConfigError, load_config


def test_file_then_environment(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("kafka: {bootstrap: 'k:1', partitions: 4}\nclickhouse: {url: 'clickhouse://a:1/x'}\n")
    config = load_config(path, environ={"YUJING_KAFKA_BOOTSTRAP": "k:2", "YUJING_METRICS_PORT": "9999", "YUJING_KAFKA_TOPIC_ORDERS": "o"})
    assert config.kafka.bootstrap == "k:2" and config.kafka.partitions == 4 and config.metrics.port == 9999
    assert config.clickhouse.url == "clickhouse://a:1/x" and config.kafka.topics() == {
        "o": "orders",
        "billing": "billing",
        "complaints": "complaints",
    }


def test_defaults_need_no_file() -> None:
    config = load_config(None, environ={})
    assert config.kafka.topics() == {"orders": "orders", "billing": "billing", "complaints": "complaints"}
    assert config.engine.engine_config().allowed_lateness == 300


@pytest.mark.parametrize("text", ["kafak: {}", "kafka: {bootstrp: x}", "kafka: {partitions: many}", "- 1"])
def test_bad_files_say_what_is_wrong(tmp_path: Path, text: str) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError):
        load_config(path, environ={})


def test_bad_environment_value() -> None:
    with pytest.raises(ConfigError, match="YUJING_KAFKA_PARTITIONS"):
        load_config(None, environ={"YUJING_KAFKA_PARTITIONS": "eight"})
    with pytest.raises(ConfigError, match="late_policy"):
        load_config(None, environ={"YUJING_ENGINE_LATE_POLICY": "maybe"}).engine.engine_config()


def test_a_misspelled_or_bad_setting_is_one_clear_line_when_the_configuration_is_read(tmp_path) -> None:
    with pytest.raises(
        ConfigError, match=r"^unknown setting YUJING_KAFKA_BOOTSTRAPP in the environment \(did you mean YUJING_KAFKA_BOOTSTRAP\?\)$"
    ):
        load_config(None, environ={"YUJING_KAFKA_BOOTSTRAPP": "kafka:9092"})
    with pytest.raises(ConfigError, match=r"^YUJING_RULES_WATCH: expected float, got 'often'$"):
        load_config(None, environ={"YUJING_RULES_WATCH": "often"})
    with pytest.raises(ConfigError, match=r"^engine.allowed_lateness: 'five minutes' is not a duration"):
        load_config(None, environ={"YUJING_ENGINE_ALLOWED_LATENESS": "five minutes"})
    with pytest.raises(ConfigError, match=r"^engine.idle_after: 'soon' is not a duration or off"):
        load_config(None, environ={"YUJING_ENGINE_IDLE_AFTER": "soon"})
    assert load_config(None, environ={"YUJING_ENGINE_IDLE_AFTER": "off", "YUJING_TEST_PROCESSES": "2"}).engine.idle_after == "off"
    done = subprocess.run(
        [sys.executable, "-m", "streams.cli", "run", "--events", str(tmp_path / "none.jsonl")],
        env={**os.environ, "YUJING_ENGINE_LATE_POLICY": "ignore"},
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines() == ["engine.late_policy must be process or drop, not 'ignore'"]


def test_silences_live_in_alertmanager_when_it_is_configured() -> None:
    assert not load_config(None, environ={}).silences_in_alertmanager()
    assert load_config(None, environ={"YUJING_ALERTMANAGER_URL": "http://am:9093"}).silences_in_alertmanager()
    file_kept = {"YUJING_ALERTMANAGER_URL": "http://am:9093", "YUJING_ALERTING_SILENCES_FROM": "file"}
    assert not load_config(None, environ=file_kept).silences_in_alertmanager()
    with pytest.raises(ConfigError, match=r"alertmanager\.url is not set"):
        load_config(None, environ={"YUJING_ALERTING_SILENCES_FROM": "alertmanager"})
    with pytest.raises(ConfigError, match="must be auto, file or alertmanager"):
        load_config(None, environ={"YUJING_ALERTING_SILENCES_FROM": "both"})
