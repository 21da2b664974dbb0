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
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

from sinks.base import hand_over, receives
from sinks.outbox import BufferedSink, Outbox, OutboxItem
from streams.alerting.manager import Decision
from streams.decode import DeadLetter, Decoder
from streams.engine import Engine
from streams.metrics import PipelineMetrics
from streams.partitioning import partitions_for
from yujing.alerts import Alert
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
        sinks: Sequence[Sink | BufferedSink],
        metrics: PipelineMetrics | None = None,
        partitions: int | None = None,
    ) -> None:
        self.engine = engine
        self.decoder = decoder
        self.sinks = list(sinks)
        self.metrics = metrics
        self.partitions = partitions
        buffered = [s for s in self.sinks if isinstance(s, BufferedSink)]
        self.outbox = Outbox(engine.backend, buffered) if buffered else None
        self.alert_count = 0
        self.event_count = 0
        self.dead_count = 0

    def process(self, records: Sequence[Record]) -> tuple[list[Alert], list[DeadLetter]]:
        started = time.perf_counter()
        events, placed, dead = self.decoder.decode_many(records)  # placed: the records' own partitions
        if self.partitions is not None:  # placed as Kafka would, the batch's customers hashed together
            placed = partitions_for([event.customer_id for event in events], self.partitions)
        batch = list(zip(placed, events, strict=True))
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
        """Hand the alert manager's dispatch since the last delivery to the sinks, and the detectors' scores to
        the metrics and the sinks that keep them (once each: they are telemetry).

        A plain sink is written here (retrying: it returns when the sink has them); a buffered sink
        gets them through the outbox and writes them on its own thread. Each sink gets what it
        ``receives``: ``records`` every admitted alert (with whether it was sent), ``sent`` the
        alerts the manager sent.
        """
        scores = self.engine.take_scores()
        if scores:
            self._deliver_scores(scores)
        dispatch = self.engine.take_dispatch()
        if not dispatch:
            return
        decisions = dispatch.decisions
        sent = [d for d in decisions if d.held is None]
        for sink in self.sinks:
            chosen = decisions if receives(sink) == "records" else sent
            if isinstance(sink, BufferedSink):
                self._to_outbox(sink, chosen)
            elif chosen:
                hand_over(sink, [(d.alert, d.held) for d in chosen])
        self.alert_count += len(decisions)
        if self.metrics is not None:
            self.metrics.alerts(d.alert for d in decisions)
            self.metrics.held((d.alert.rule_id, d.held_kind) for d in decisions if d.held_kind)

    def _to_outbox(self, sink: BufferedSink, chosen: list[Decision]) -> None:
        assert self.outbox is not None
        items = [(d.partition, f"{d.alert.alert_id}:{d.alert.status}", OutboxItem(alert=d.alert, held=d.held)) for d in chosen]
        self.outbox.put(sink, items)

    def _notifier_hooks(self, name: str) -> list[Callable[..., Any]]:
        """Each sink's method ``name`` (behind its buffer, if it has one), for the sinks that keep alerts alive."""
        targets = (sink.sink if isinstance(sink, BufferedSink) else sink for sink in self.sinks)
        return [hook for hook in (getattr(target, name, None) for target in targets) if hook is not None]

    def suspend_keepalive(self) -> None:
        """A rebalance began: re-sending notifiers stop keeping alerts alive until :meth:`recover` tells them
        which are still this process's (a partition given away may already be another worker's)."""
        for suspend in self._notifier_hooks("suspend"):
            suspend()

    def recover(self) -> int:
        """After a restart: queue again what the buffered sinks had not written, and tell re-sending
        notifiers which alerts are still firing. Returns the outbox items queued."""
        open_alerts = self.engine.alerting.open_alerts()
        for restore in self._notifier_hooks("restore"):
            restore(open_alerts)
        return self.outbox.recover() if self.outbox is not None else 0

    def drain(self, timeout: float = 60.0) -> bool:
        """Wait for the buffered sinks to write what they hold; ``False`` if one is still behind after ``timeout``."""
        self.commit_outbox()
        ok = all(s.drain(timeout) for s in self.sinks if isinstance(s, BufferedSink))
        self.commit_outbox()
        return ok

    def commit_outbox(self) -> None:
        if self.outbox is not None:
            self.outbox.confirm()

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
        self.commit_outbox()
        self.engine.commit()
        if self.metrics is not None:
            wall = self.engine.clock()
            wm = self.engine.watermarks
            self.metrics.watermarks({p: wm.current(p, wall) for p in wm.partitions()}, now=wall)

    def close(self) -> None:
        for sink in self.sinks:
            sink.close()
