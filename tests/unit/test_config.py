"""Configuration: defaults ← file ← environment, with clear errors."""

from __future__ import annotations

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
