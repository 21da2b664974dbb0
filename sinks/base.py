"""The batching, retrying base every sink builds on.

A runner hands a sink the alerts of one processed batch (``write``); the
sink splits them into chunks of at most ``max_batch`` and writes each chunk
with ``write_chunk``, retrying with exponential backoff. The runner commits
its input offsets and state only after ``write`` returns, so an alert is
never acknowledged before it is stored (at-least-once; the sinks are
idempotent by ``alert_id``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from yujing.alerts import Alert

__all__ = ["RetryingSink", "SinkGaveUp", "SinkObserver", "hand_over", "receives"]

log = logging.getLogger(__name__)


def receives(sink: object) -> str:
    """What a sink is given: ``records`` (every admitted alert, the default) or ``sent`` (those the manager sent)."""
    return getattr(sink, "receives", "records")


def hand_over(sink: Any, decisions: Sequence[tuple[Alert, str | None]]) -> None:
    """Give a sink its ``(alert, held reason or None)`` pairs: a sink that keeps the reasons (``write_decisions``)
    gets the pairs, any other the alerts."""
    if hasattr(sink, "write_decisions"):
        sink.write_decisions(decisions)
    else:
        sink.write([alert for alert, _ in decisions])


class SinkGaveUp(RuntimeError):
    """Raised when a sink with a retry limit exhausted it."""


class SinkObserver:
    """Receives a sink's counts (the pipeline metrics implement it); the default ignores them."""

    def batch(self, sink: str, size: int) -> None:
        pass

    def failure(self, sink: str) -> None:
        pass


class _MetricsObserver(SinkObserver):
    def __init__(self, metrics: object) -> None:
        self.m = metrics

    def batch(self, sink: str, size: int) -> None:
        self.m.sink_batch_size.labels(sink).observe(size)  # type: ignore[attr-defined]
        self.m.sink_written_total.labels(sink).inc(size)  # type: ignore[attr-defined]

    def failure(self, sink: str) -> None:
        self.m.sink_failures_total.labels(sink).inc()  # type: ignore[attr-defined]


class RetryingSink:
    """Base class: subclasses implement ``write_chunk`` (and ``close`` if they hold resources).

    ``max_retries=None`` retries until it succeeds: the stream waits
    (backpressure) rather than losing an alert.
    """

    name = "sink"

    def __init__(
        self,
        *,
        max_batch: int = 1000,
        max_retries: int | None = None,
        backoff: float = 0.2,
        max_backoff: float = 10.0,
        metrics: object | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.max_batch = max_batch
        self.max_retries = max_retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.observer = _MetricsObserver(metrics) if metrics is not None else SinkObserver()
        self.sleep = sleep

    def write_chunk(self, alerts: Sequence[Alert]) -> None:
        raise NotImplementedError

    def write(self, alerts: Sequence[Alert]) -> None:
        for start in range(0, len(alerts), self.max_batch):
            chunk = alerts[start : start + self.max_batch]
            self._write_with_retry(chunk)
            self.observer.batch(self.name, len(chunk))

    def _write_with_retry(self, chunk: Sequence[Alert]) -> None:
        self.retry(lambda: self.write_chunk(chunk))

    def retry(self, action: Callable[[], None]) -> None:
        """Run ``action`` until it succeeds, backing off exponentially (or until ``max_retries``)."""
        attempt, delay = 0, self.backoff
        while True:
            try:
                action()
                return
            except Exception as exc:
                attempt += 1
                self.observer.failure(self.name)
                if self.max_retries is not None and attempt > self.max_retries:
                    raise SinkGaveUp(f"{self.name}: gave up after {attempt} attempts: {exc}") from exc
                log.warning("%s: failed (attempt %d, retrying in %.1fs): %s", self.name, attempt, delay, exc)
                self.on_retry()
                self.sleep(delay)
                delay = min(delay * 2, self.max_backoff)

    def on_retry(self) -> None:
        """Hook before a retry (e.g. reconnect)."""

    def close(self) -> None:
        """Nothing buffered by default."""
