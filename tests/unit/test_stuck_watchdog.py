"""The stuck-partition watchdog: input faust stopped delivering is fetched again from where the worker's state ends."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

from faust.types import TP

from streams.stuck import StuckPartitionWatchdog

O0, O1, CHANGELOG = TP("orders", 0), TP("orders", 1), TP("state-changelog", 0)


class Pending:
    def __init__(self, tp: TP) -> None:
        self.tp = tp


class FakeQueue:
    def __init__(self) -> None:
        self.size = 0

    def qsize(self) -> int:
        return self.size


class FakeFlow:
    def __init__(self) -> None:
        self.active = True

    def is_active(self) -> bool:
        return self.active

    def resume(self) -> None:
        self.active = True


class FakeConsumer:
    """What the watchdog reads of faust's consumer (unit test double)."""

    def __init__(self) -> None:
        self.tps = [O0, O1, CHANGELOG]
        self._read_offset: dict[TP, int | None] = {}
        self._committed_offset: dict[TP, int | None] = {}
        self._unacked_messages: set[Any] = set()
        self.seeks: list[tuple[TP, int]] = []
        self.highwaters: dict[TP, int] = {}
        self.suspend_flow = asyncio.Event()
        self.flow_active = True
        self._paused_partitions: set[TP] = set()
        self._buffered_partitions: set[TP] = set()
        self._active_partitions = set(self.tps)
        self._acked: dict[TP, list[int]] = {}

    def highwater(self, tp: TP) -> int | None:
        return self.highwaters.get(tp)

    def assignment(self) -> list[TP]:
        return self.tps

    def resume_flow(self) -> None:
        self.suspend_flow.clear()

    async def seek(self, tp: TP, offset: int) -> None:
        self.seeks.append((tp, offset))
        self._read_offset[tp] = offset


class FakeChannel:
    def __init__(self) -> None:
        self.queue = FakeQueue()


class FakeTopics:
    """The conductor's routes: each input partition to the agent's channel."""

    def __init__(self, tps: list[TP]) -> None:
        self.channel = FakeChannel()
        self.full = {tp: {self.channel} for tp in tps}
        self._tp_index: dict[TP, set[Any]] = dict(self.full)
        self.rerouted = 0

    async def on_partitions_assigned(self, assigned: set[TP]) -> None:
        self._tp_index = {tp: self.full[tp] for tp in assigned if tp in self.full}
        self.rerouted += 1


def make(next_offsets: dict[TP, int] | None = None) -> tuple[StuckPartitionWatchdog, FakeConsumer, Any]:
    consumer = FakeConsumer()
    completed = asyncio.Event()
    completed.set()
    app = SimpleNamespace(
        consumer=consumer,
        rebalancing=False,
        should_stop=False,
        consumer_generation_id=0,
        flow_control=FakeFlow(),
        topics=FakeTopics([O0, O1]),
        tables=SimpleNamespace(recovery=SimpleNamespace(completed=completed, in_recovery=False)),
    )
    offsets = next_offsets or {}
    return StuckPartitionWatchdog(app, is_input=lambda tp: tp.topic == "orders", next_offset=offsets.get), consumer, app


def twice(dog: StuckPartitionWatchdog) -> tuple[int, int]:
    return asyncio.run(dog.check()), asyncio.run(dog.check())


def test_a_partition_read_past_where_the_state_ends_with_nothing_pending_is_sought_there_on_the_second_look(caplog) -> None:  # type: ignore[no-untyped-def]
    dog, consumer, _ = make(next_offsets={O0: 271, O1: 100})
    consumer._read_offset.update({O0: 296, O1: 99, CHANGELOG: 500})
    assert twice(dog) == (0, 1)  # first look: only a suspect
    assert consumer.seeks == [(O0, 271)]  # orders-1 delivered what it read; changelogs are not streams
    # the worker's log keeps the consumer's state that made it act: the evidence for a stall nobody watched
    assert "orders[0]: active=True routed=1 read=296" in caplog.text, caplog.text


def test_a_stuck_partition_is_not_sought_past_its_commit() -> None:
    """faust commits only up to the first offset it never acknowledged: a seek past the commit would stop its commits."""
    dog, consumer, _ = make(next_offsets={O0: 271})
    consumer._read_offset[O0] = 296
    consumer._committed_offset[O0] = 250
    assert twice(dog) == (0, 1) and consumer.seeks == [(O0, 250)]


def test_a_commit_stuck_behind_the_state_is_no_reason_to_read_again() -> None:
    """CI: faust's commit stuck at 48 while the worker had processed to 389; seeking back to 48 only re-read duplicates."""
    dog, consumer, _ = make(next_offsets={O0: 389})
    consumer._read_offset[O0] = 388
    consumer._committed_offset[O0] = 48
    consumer.highwaters[O0] = 389
    assert twice(dog) == (0, 0) and consumer.seeks == []


def test_progress_or_pending_or_queued_messages_mean_not_stuck() -> None:
    next_offsets = {O0: 271}
    dog, consumer, app = make(next_offsets=next_offsets)
    consumer._read_offset[O0] = 296
    asyncio.run(dog.check())
    next_offsets[O0] = 280  # it moved: a healthy partition catching up
    assert asyncio.run(dog.check()) == 0
    consumer._unacked_messages.add(Pending(O0))
    assert twice(dog) == (0, 0)
    consumer._unacked_messages.clear()
    app.topics.channel.queue.size = 3  # read and queued for the stream, not taken yet
    assert twice(dog) == (0, 0)
    assert consumer.seeks == []


def test_nothing_is_done_while_rebalancing_or_stopping() -> None:
    dog, consumer, app = make()
    consumer._read_offset[O0] = 10
    app.rebalancing = True
    assert twice(dog) == (0, 0)
    app.rebalancing, app.should_stop = False, True
    assert twice(dog) == (0, 0)
    app.should_stop = False
    assert twice(dog) == (0, 1) and consumer.seeks == [(O0, 0)]


def test_a_partition_never_fetched_with_unread_messages_is_sought_to_the_workers_next_offset() -> None:
    """After a restart, no read and no committed offset, messages beyond where the worker's state says it is."""
    next_offsets = {O0: 120, O1: 57}
    dog, consumer, _ = make(next_offsets=next_offsets)
    consumer.highwaters.update({O0: 252, O1: 57, CHANGELOG: 1834})
    assert twice(dog) == (0, 1)
    assert consumer.seeks == [(O0, 120)]  # orders-1 has nothing unread; changelogs are not streams
    consumer._read_offset[O0], next_offsets[O0] = 130, 131  # it reads again: not sought again
    assert twice(dog) == (0, 0) and len(consumer.seeks) == 1


def test_a_sought_partition_whose_fetch_never_comes_is_sought_again_and_an_idle_one_is_left_alone() -> None:
    dog, consumer, _ = make(next_offsets={O0: 120, O1: 57})
    consumer._read_offset.update({O0: 120, O1: 57})  # both sought to where the state ends
    consumer.highwaters.update({O0: 252, O1: 57})  # orders-1 holds nothing beyond: idle
    assert twice(dog) == (0, 1) and consumer.seeks == [(O0, 120)]


def test_a_partition_the_worker_never_read_starts_from_its_commit_or_the_beginning() -> None:
    dog, consumer, _ = make()
    consumer.highwaters.update({O0: 30, O1: 9})
    consumer._committed_offset[O0] = 12
    assert twice(dog) == (0, 2) and sorted(consumer.seeks) == [(O0, 12), (O1, 0)]


def test_a_flow_left_suspended_outside_a_rebalance_is_resumed_on_the_second_look() -> None:
    dog, consumer, app = make()
    consumer.suspend_flow.set()
    app.flow_control.active = False
    assert twice(dog) == (0, 1)
    assert not consumer.suspend_flow.is_set() and app.flow_control.is_active()


def test_an_assigned_partition_routed_to_no_stream_is_routed_again() -> None:
    dog, _, app = make()
    del app.topics._tp_index[O1]  # faust drops such a partition's messages unseen
    assert twice(dog) == (0, 1)
    assert app.topics.rerouted == 1 and app.topics._tp_index[O1]


def test_a_rebalance_that_does_not_end_is_logged_with_the_consumers_state_once_a_minute(caplog) -> None:  # type: ignore[no-untyped-def]
    now = [0.0]
    dog, consumer, app = make()
    dog.clock = lambda: now[0]
    app.rebalancing = True
    for t in (0.0, 30.0, 59.0):
        now[0] = t
        asyncio.run(dog.check())
    assert "rebalancing for" not in caplog.text
    for t in (60.0, 65.0, 119.0, 120.0):
        now[0] = t
        asyncio.run(dog.check())
    assert caplog.text.count("rebalancing for") == 2 and "orders[0]: active=True" in caplog.text, caplog.text
    app.rebalancing = False  # it ended: the next one is timed afresh
    asyncio.run(dog.check())
    assert dog.rebalancing_since is None and consumer.seeks == []
