"""The buffered delivery: a thread per sink, nothing lost while a sink fails, confirmed items leave the state."""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Sequence

from prometheus_client import CollectorRegistry

from sinks.base import RetryingSink
from sinks.outbox import BufferedSink, Outbox, OutboxItem
from streams.engine import DictBackend
from streams.metrics import PipelineMetrics
from yujing.alerts import Alert
from yujing.groups import MAX_GROUP_ALERTS, group_alerts

T = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)


def alert(i: int, region: str = "杭州", status: str = "firing") -> Alert:
    return Alert(
        alert_id=f"a{i}",
        source="rule",
        rule_id="r",
        rule_version="1",
        severity="major",
        status=status,  # type: ignore[arg-type]
        starts_at=T,
        detected_at=T,
        labels={"region": region},
        summary="s",
        evidence={},
    )


class Flaky(RetryingSink):
    """Fails while ``down`` is set; records each successful write."""

    name = "flaky"

    def __init__(self, metrics: PipelineMetrics | None = None) -> None:
        super().__init__(backoff=0.01, max_backoff=0.05, metrics=metrics)
        self.down = threading.Event()
        self.batches: list[list[str]] = []

    def write_chunk(self, alerts: Sequence[Alert]) -> None:
        if self.down.is_set():
            raise ConnectionError("down")
        self.batches.append([a.alert_id for a in alerts])


def items(n: int, start: int = 0) -> list[tuple[int, str, OutboxItem]]:
    return [(i % 8, f"a{i}:firing", OutboxItem(alert(i))) for i in range(start, start + n)]


def test_a_dead_sink_does_not_block_the_stream_and_loses_nothing() -> None:
    metrics = PipelineMetrics(CollectorRegistry())
    sink = Flaky(metrics)
    buffered = BufferedSink(sink, metrics=metrics)
    outbox = Outbox(DictBackend(), [buffered])
    sink.down.set()
    started = time.monotonic()
    for k in range(20):
        outbox.put(buffered, items(10, 10 * k))
    assert time.monotonic() - started < 0.5  # handing over never waits for the sink
    time.sleep(0.2)
    assert outbox.confirm() == 0 and len(list(outbox.stores["flaky"].items())) == 200
    assert metrics.registry.get_sample_value("yujing_sink_failures_total", {"sink": "flaky"}) >= 1
    sink.down.clear()
    assert buffered.drain(10)
    assert outbox.confirm() == 200 and not list(outbox.stores["flaky"].items())
    assert sorted(a for b in sink.batches for a in b) == sorted(f"a{i}" for i in range(200))
    buffered.close()


def test_unconfirmed_items_are_queued_again_after_a_restart() -> None:
    backend = DictBackend()
    sink = Flaky()
    sink.down.set()
    first = BufferedSink(sink)
    Outbox(backend, [first]).put(first, items(5))
    first._closing = True  # the process dies with the sink still down
    again = Flaky()
    second = BufferedSink(again)
    outbox = Outbox(backend, [second])
    assert outbox.recover() == 5
    assert second.drain(10) and outbox.confirm() == 5
    assert sorted(a for b in again.batches for a in b) == [f"a{i}" for i in range(5)]
    first._closing = False
    sink.down.clear()  # let the first thread finish instead of retrying for the rest of the session
    first.close(timeout=5)


def test_a_full_buffer_makes_the_stream_wait_rather_than_drop() -> None:
    metrics = PipelineMetrics(CollectorRegistry())
    sink = Flaky()
    sink.down.set()
    buffered = BufferedSink(sink, capacity=10, metrics=metrics)
    outbox = Outbox(DictBackend(), [buffered])
    outbox.put(buffered, items(10))
    done = threading.Event()
    threading.Thread(target=lambda: (outbox.put(buffered, items(5, 10)), done.set()), daemon=True).start()
    assert not done.wait(0.5)  # waiting: the buffer is full
    assert metrics.registry.get_sample_value("yujing_sink_buffer_full_total", {"sink": "flaky"}) == 1
    sink.down.clear()
    assert done.wait(10)
    assert buffered.drain(10)
    assert len({a for b in sink.batches for a in b}) == 15


def test_linger_collects_what_arrives_in_the_interval_into_one_write() -> None:
    sink = Flaky()
    buffered = BufferedSink(sink, linger=0.4)
    outbox = Outbox(DictBackend(), [buffered])
    for k in range(4):
        outbox.put(buffered, items(3, 3 * k))
        time.sleep(0.05)
    time.sleep(0.8)
    assert [len(b) for b in sink.batches] == [12]
    outbox.put(buffered, items(2, 100))
    assert buffered.drain(5)  # a drain does not wait out the interval
    assert [len(b) for b in sink.batches] == [12, 2]


def test_groups_split_by_labels_with_stable_ids_and_bounded_size() -> None:
    alerts = [alert(i, "杭州") for i in range(60)] + [alert(100, "宁波"), alert(101, "宁波", "resolved")]
    groups = group_alerts(alerts, ["region"])
    assert [(g.labels, g.count, g.firing, g.resolved, g.truncated) for g in groups] == [
        ({"region": "杭州"}, 60, 60, 0, True),
        ({"region": "宁波"}, 2, 1, 1, False),
    ]
    assert len(groups[0].alerts) == MAX_GROUP_ALERTS
    assert [g.group_id for g in group_alerts(list(reversed(alerts)), ["region"])] == [g.group_id for g in reversed(groups)]


def test_scores_go_through_the_thread_and_a_failing_store_never_blocks() -> None:
    from yujing.scores import Score

    class Keeper(Flaky):
        def __init__(self, metrics: PipelineMetrics) -> None:
            super().__init__(metrics)
            self.scores: list[Score] = []

        def write_scores(self, scores: Sequence[Score]) -> None:
            if self.down.is_set():
                raise ConnectionError("down")
            self.scores.extend(scores)

    metrics = PipelineMetrics(CollectorRegistry())
    sink = Keeper(metrics)
    buffered = BufferedSink(sink, metrics=metrics)
    score = Score("r", "cohort_spike", "region=杭州", 0.0, 7.0, 30, 5)
    buffered.write_scores([score, score])
    deadline = time.monotonic() + 5
    while len(sink.scores) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert sink.scores == [score, score]
    sink.down.set()
    started = time.monotonic()
    buffered.write_scores([score])
    assert time.monotonic() - started < 0.1
    deadline = time.monotonic() + 5
    while metrics.registry.get_sample_value("yujing_sink_failures_total", {"sink": "flaky_scores"}) is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert metrics.registry.get_sample_value("yujing_sink_failures_total", {"sink": "flaky_scores"}) == 1  # one attempt, then dropped
    sink.down.clear()
    buffered.close()
