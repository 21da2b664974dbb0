"""One step every runner shares: decode records, run the engine, deliver alerts to the sinks.

Order matters for at-least-once delivery: a runner calls :meth:`Pipeline.process`,
then :meth:`Pipeline.deliver` (sinks, possibly slow: the worker runs it off
the event loop), then :meth:`Pipeline.commit` (state), and only then
acknowledges its input.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Sequence
from typing import NamedTuple

from streams.decode import DeadLetter, Decoder
from streams.engine import Engine
from streams.metrics import PipelineMetrics
from streams.partitioning import partition_for
from yujing.alerts import Alert
from yujing.events import Event
from yujing.protocols import Sink
from yujing.scores import Score

log = logging.getLogger(__name__)

__all__ = ["Pipeline", "Record"]


class Record(NamedTuple):
    """A message as read from a topic (or a file line with its inferred topic)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    arrived: float = 0.0


class Pipeline:
    """Decoder → engine → sinks, with metrics.

    ``partition_of`` places a decoded event when the record carries no
    partition (file input): the worker passes ``None`` and uses Kafka's.
    """

    def __init__(
        self,
        engine: Engine,
        decoder: Decoder,
        sinks: Sequence[Sink],
        metrics: PipelineMetrics | None = None,
        partitions: int | None = None,
    ) -> None:
        self.engine = engine
        self.decoder = decoder
        self.sinks = list(sinks)
        self.metrics = metrics
        self.partitions = partitions
        self.alert_count = 0
        self.event_count = 0
        self.dead_count = 0

    def process(self, records: Sequence[Record]) -> tuple[list[Alert], list[DeadLetter]]:
        started = time.perf_counter()
        decode = self.decoder.decode
        batch: list[tuple[int, Event]] = []
        dead: list[DeadLetter] = []
        partitions = self.partitions
        for record in records:
            result = decode(record.topic, record.partition, record.offset, record.key, record.value)
            if isinstance(result, DeadLetter):
                dead.append(result)
                continue
            if partitions is not None:
                batch.append((partition_for(result.customer_id, partitions), result))
            else:
                batch.append((record.partition, result))
        alerts = self.engine.process(batch)
        self.event_count += len(batch)
        self.dead_count += len(dead)
        if self.metrics is not None:
            m = self.metrics
            read = Counter(record.topic for record in records)
            rejected = Counter(letter.topic for letter in dead)
            for letter in dead:
                m.dead_letter(letter.topic, letter.category)
            m.event_counts({(topic, "accepted"): n - rejected[topic] for topic, n in read.items()})
            m.event_counts({(topic, "dead_letter"): n for topic, n in rejected.items()})
            done = time.perf_counter()
            m.batch_seconds.observe(done - started)
            arrived = records[0].arrived if records else 0.0  # the oldest record of the batch
            if arrived:
                m.event_latency_seconds.observe(time.time() - arrived)
        return alerts, dead

    def tick(self) -> list[Alert]:
        """Idle advance: fire timers whose deadline passed without traffic."""
        return self.engine.tick()

    def deliver(self, alerts: Sequence[Alert]) -> None:
        """Write alerts to every sink (retrying; returns when all have them), and the detectors' scores since the
        last delivery to the metrics and the sinks that keep them (once each: they are telemetry)."""
        scores = self.engine.take_scores()
        if scores:
            self._deliver_scores(scores)
        if not alerts:
            return
        for sink in self.sinks:
            sink.write(alerts)
        self.alert_count += len(alerts)
        if self.metrics is not None:
            self.metrics.alerts(alerts)

    def has_scores(self) -> bool:
        """Whether the engine holds scores to deliver (the worker then delivers even without alerts)."""
        return self.engine.scores_pending()

    def _deliver_scores(self, scores: Sequence[Score]) -> None:
        if self.metrics is not None:
            self.metrics.scores(scores)
        for sink in self.sinks:
            write = getattr(sink, "write_scores", None)
            if write is None:
                continue
            try:
                write(scores)
            except Exception:  # a sink's trouble must not stop the stream: counted and logged
                log.warning("sink %s could not store %d detector scores", sink.name, len(scores), exc_info=True)
                if self.metrics is not None:
                    self.metrics.sink_failures_total.labels(f"{sink.name}_scores").inc()

    def commit(self) -> None:
        self.engine.commit()
        if self.metrics is not None:
            wall = self.engine.clock()
            wm = self.engine.watermarks
            self.metrics.watermarks({p: wm.current(p, wall) for p in wm.partitions()}, now=wall)

    def close(self) -> None:
        for sink in self.sinks:
            sink.close()
