"""Delivery that never blocks the stream: a bounded buffer and a thread per sink, backed by keyed state.

The pipeline hands each batch's items (alerts, or group notifications) to an
:class:`Outbox`. For every buffered sink the items are first written to keyed
state (``~outbox:<sink>``, under the partition that raised them, so the
changelog carries them), then queued for that sink's delivery thread, which
writes them in batches with retry and backoff. Items a sink has written are
deleted from state at the next commit. So:

- a slow or dead sink delays only itself: the stream and the other sinks go on;
- nothing is lost: after a crash the worker recovers the outbox from state and
  sends what was not confirmed again (the sinks are idempotent by id);
- the buffer is bounded (``capacity`` items per sink); when a sink has been
  down long enough to fill it, the stream waits for it (backpressure) rather
  than dropping alerts, and ``yujing_sink_buffer_full_total`` says so.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

import msgspec

from sinks.base import RetryingSink, hand_over, receives
from yujing.alerts import Alert
from yujing.protocols import KeyedState, StateBackend

__all__ = ["MAX_SCORES", "OUTBOX_PREFIX", "BufferedSink", "Outbox", "OutboxItem"]

log = logging.getLogger(__name__)


#: Prefix of the outbox namespaces (a changelog sends them before the state that remembers the alerts as raised).
OUTBOX_PREFIX = "~outbox:"

#: Detector scores a buffered sink holds while its server is down (the oldest are dropped first).
MAX_SCORES = 50_000


class OutboxItem(msgspec.Struct, frozen=True, array_like=True):
    """One undelivered alert, with the manager's decision (``None``: sent; else why it was held back)."""

    alert: Alert
    held: str | None = None


class BufferedSink:
    """A sink's delivery thread over a bounded queue; ``write`` (what the sink is given) runs off the stream.

    ``receives`` says what the sink gets: ``records`` (every admitted alert) or
    ``sent`` (the alerts the manager sent). With ``linger`` the thread waits that
    long after the first item before it writes, so one write holds what arrived
    in the interval (the webhook's grouping).
    """

    def __init__(self, sink: RetryingSink, *, capacity: int = 100_000, metrics: Any = None, linger: float = 0.0) -> None:
        self.sink = sink
        self.name = sink.name
        self.receives = receives(sink)
        self.capacity = capacity
        self.linger = linger
        self.metrics = metrics
        self._queue: deque[tuple[str, OutboxItem]] = deque()
        self._scores: deque[Any] = deque(maxlen=MAX_SCORES)
        self._done: deque[str] = deque()
        self._cond = threading.Condition()
        self._closing = False
        self._draining = False
        self._busy = False
        self._inflight = 0
        self._thread = threading.Thread(target=self._run, name=f"sink-{self.name}", daemon=True)
        self._thread.start()

    # -- the stream's side ----------------------------------------------------------
    def submit(self, items: Sequence[tuple[str, OutboxItem]]) -> None:
        """Queue items; waits only while the buffer is full (the sink has been down that long)."""
        with self._cond:
            if self._held() + len(items) > self.capacity:
                log.warning("sink %s: buffer full (%d items); the stream waits for it", self.name, self._held())
                if self.metrics is not None:
                    self.metrics.sink_buffer_full_total.labels(self.name).inc()
                while self._held() + len(items) > self.capacity and self._held() > 0 and not self._closing:
                    self._cond.wait(1.0)
            self._queue.extend(items)
            self._gauge()
            self._cond.notify_all()

    def take_done(self) -> list[str]:
        """Keys of the items written since the last call."""
        out = []
        while self._done:
            out.append(self._done.popleft())
        return out

    def _held(self) -> int:
        return len(self._queue) + self._inflight

    def pending(self) -> int:
        """Items queued or being written."""
        with self._cond:
            return self._held()

    def drain(self, timeout: float) -> bool:
        """Wait until everything queued is written; ``False`` if ``timeout`` passed first."""
        deadline = time.monotonic() + timeout
        with self._cond:
            self._draining = True  # a lingering thread writes now
            self._cond.notify_all()
            while self._queue or self._busy:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.5))
        return True

    def close(self, timeout: float = 30.0) -> None:
        if not self.drain(timeout):
            log.error("sink %s: closing with %d items not written (they stay in the outbox state)", self.name, self.pending())
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        self._thread.join(timeout=5)
        self.sink.close()

    # -- the delivery thread ----------------------------------------------------------
    def write_scores(self, scores: Sequence[Any]) -> None:
        """Detector scores for a sink that keeps them: queued for the thread (telemetry: the oldest are dropped
        when the sink is down long enough to fill ``MAX_SCORES``; never persisted, never waited for)."""
        if not hasattr(self.sink, "write_scores") or not scores:
            return
        with self._cond:
            self._scores.extend(scores)
            self._cond.notify_all()

    def _flush_scores(self) -> None:
        with self._cond:
            scores = list(self._scores)
            self._scores.clear()
        if not scores:
            return
        try:
            self.sink.write_scores(scores)  # type: ignore[attr-defined]
        except Exception:  # one attempt: counted and logged, the stream never waits for telemetry
            log.warning("sink %s could not store %d detector scores", self.name, len(scores), exc_info=True)
            if self.metrics is not None:
                self.metrics.sink_failures_total.labels(f"{self.name}_scores").inc()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._scores and not self._closing:
                    self._cond.wait()
            if not self._queue:  # scores only, or closing
                self._flush_scores()
                if self._closing and not self._queue:
                    return
                continue
            with self._cond:
                if self.linger > 0 and not self._closing:
                    self._draining = False
                    deadline = time.monotonic() + self.linger
                    while not self._closing and not self._draining and (left := deadline - time.monotonic()) > 0:
                        self._cond.wait(left)
                batch = [self._queue.popleft() for _ in range(min(self.sink.max_batch, len(self._queue)))]
                self._busy = True
                self._inflight = len(batch)
            try:
                self._write([item for _, item in batch])
                self._done.extend(key for key, _ in batch)
                self._flush_scores()
            except Exception:  # a sink that gave up (max_retries): keep the items for the next attempt
                log.exception("sink %s: batch of %d not written; re-queued", self.name, len(batch))
                with self._cond:
                    self._queue.extendleft(reversed(batch))
                time.sleep(1.0)
            finally:
                with self._cond:
                    self._busy = False
                    self._inflight = 0
                    self._gauge()
                    self._cond.notify_all()

    def _write(self, items: list[OutboxItem]) -> None:
        hand_over(self.sink, [(i.alert, i.held) for i in items])

    def _gauge(self) -> None:
        if self.metrics is not None:
            self.metrics.sink_buffered.labels(self.name).set(self._held())


class Outbox:
    """Keyed-state records of what each buffered sink still has to write, and the hand-over to its thread."""

    def __init__(self, backend: StateBackend, sinks: Sequence[BufferedSink]) -> None:
        self.backend = backend
        self.sinks = list(sinks)
        self.stores: dict[str, KeyedState[OutboxItem]] = {s.name: backend.namespace(OUTBOX_PREFIX + s.name, OutboxItem) for s in sinks}

    def put(self, sink: BufferedSink, items: Sequence[tuple[int, str, OutboxItem]]) -> None:
        """Store then queue ``(partition, key, item)``s for ``sink``."""
        if not items:
            return
        store = self.stores[sink.name]
        use = self.backend.use_partition
        for partition, key, item in items:
            use(partition)
            store.set(key, item)
        sink.submit([(key, item) for _, key, item in items])

    def confirm(self) -> int:
        """Forget what the sinks have written (call before the state is flushed)."""
        n = 0
        for sink in self.sinks:
            store = self.stores[sink.name]
            for key in sink.take_done():
                store.delete(key)
                n += 1
        return n

    def recover(self, resubmit: Callable[[BufferedSink, list[tuple[str, OutboxItem]]], None] | None = None) -> int:
        """Queue again what state says was not written (after a restart); returns the count."""
        n = 0
        for sink in self.sinks:
            items = list(self.stores[sink.name].items())
            if items:
                (resubmit or BufferedSink.submit)(sink, items)
                n += len(items)
        return n
