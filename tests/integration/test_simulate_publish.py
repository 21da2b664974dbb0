"""``yujing simulate --kafka --rate N`` publishes every event, keyed by customer, at about the chosen rate."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from tests.helpers import VOLUMES
from tests.integration.harness import ROOT
from tests.integration.servers import TansuBroker

pytestmark = pytest.mark.integration


def test_simulator_publishes_to_the_broker_at_the_chosen_rate(broker: TansuBroker) -> None:
    from kafka import KafkaConsumer

    env = {
        **os.environ,
        "YUJING_KAFKA_BOOTSTRAP": broker.bootstrap,
        "YUJING_KAFKA_TOPIC_ORDERS": "pub-orders",
        "YUJING_KAFKA_TOPIC_BILLING": "pub-billing",
        "YUJING_KAFKA_TOPIC_COMPLAINTS": "pub-complaints",
    }
    args = ["simulate", "--kafka", "--rate", "1000", "--customers", "200", *VOLUMES, "--history-days", "0.5", "--days", "0.5"]
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "streams.cli", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    elapsed = time.monotonic() - started
    assert done.returncode == 0, done.stderr
    sent = int(done.stderr.split("published ")[1].split()[0])
    assert sent > 1000 and elapsed >= sent / 1000 * 0.9  # paced, not as fast as possible
    consumer = KafkaConsumer(
        "pub-orders",
        "pub-billing",
        "pub-complaints",
        bootstrap_servers=broker.bootstrap,
        auto_offset_reset="earliest",
        group_id=None,
        consumer_timeout_ms=4000,
    )
    messages = list(consumer)
    consumer.close()
    assert len(messages) == sent
    assert all(m.key and m.key.decode() in m.value.decode() for m in messages)  # keyed by customer_id
    assert {m.topic for m in messages} == {"pub-orders", "pub-billing", "pub-complaints"}
