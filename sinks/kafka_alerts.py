"""Sent alerts to a Kafka topic (``alerts``): the contract's JSON, keyed by ``alert_id``.

The ticketing system's auto-escalation consumes it. A message's headers say
its ``status`` and ``rule_id``, so a consumer can route without parsing; the
value is the alert record of ``docs/contracts/alerts.md``. Delivery is at
least once: a consumer keeps the latest record per ``alert_id`` and status.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any

import msgspec

from sinks.base import RetryingSink
from yujing.alerts import Alert

__all__ = ["KafkaAlertSink"]


class KafkaAlertSink(RetryingSink):
    """Produces each sent alert to ``topic`` and waits for the broker's acknowledgement of the batch."""

    name = "kafka"
    receives = "sent"

    def __init__(self, bootstrap: str, topic: str = "alerts", *, connect: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.bootstrap = bootstrap
        self.topic = topic
        self._producer: Any = None
        self._encode = msgspec.json.Encoder().encode
        if connect:
            self.retry(self._ensure)

    def _ensure(self) -> Any:
        if self._producer is None:
            from kafka import KafkaProducer

            self._producer = KafkaProducer(
                bootstrap_servers=self.bootstrap, acks="all", linger_ms=5, client_id="yujing-alerts", request_timeout_ms=10_000
            )
        return self._producer

    def write_chunk(self, alerts: Sequence[Alert]) -> None:
        producer = self._ensure()
        futures = [
            producer.send(
                self.topic,
                key=a.alert_id.encode(),
                value=self._encode(a),
                headers=[("status", a.status.encode()), ("rule_id", a.rule_id.encode())],
            )
            for a in alerts
        ]
        producer.flush(timeout=15)
        for future in futures:
            future.get(timeout=15)

    def on_retry(self) -> None:
        if self._producer is not None:
            with contextlib.suppress(Exception):  # already broken
                self._producer.close(timeout=2)
        self._producer = None

    def close(self) -> None:
        self.on_retry()
