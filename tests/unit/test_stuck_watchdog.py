"""The flow watchdog: a consumer flow left suspended outside a rebalance is resumed, a group error nobody took is
taken, a long rebalance is reported."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

from aiokafka.errors import KafkaError
from faust.types import TP

from streams.stuck import FlowWatchdog
from tests.unit.group_errors import BorrowedCoordinator

O0, O1, CHANGELOG = TP("orders", 0), TP("orders", 1), TP("state-changelog", 0)


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


class FakeTopics:
    """The conductor's routes (read by describe_consumer)."""

    def __init__(self, tps: list[TP]) -> None:
        self._tp_index: dict[TP, set[Any]] = {tp: {object()} for tp in tps}


def make() -> tuple[FlowWatchdog, FakeConsumer, Any]:
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
    return FlowWatchdog(app), consumer, app


def twice(dog: FlowWatchdog) -> tuple[int, int]:
    return asyncio.run(dog.check()), asyncio.run(dog.check())


def test_nothing_is_done_while_rebalancing_or_stopping() -> None:
    dog, consumer, app = make()
    consumer.suspend_flow.set()  # faust suspends the flow in every rebalance: that is no fault
    app.rebalancing = True
    assert twice(dog) == (0, 0)
    app.rebalancing, app.should_stop = False, True
    assert twice(dog) == (0, 0)
    app.should_stop = False
    assert twice(dog) == (0, 1) and not consumer.suspend_flow.is_set()


def test_a_partition_waiting_for_its_first_fetch_or_read_ahead_of_the_state_is_left_alone() -> None:
    """The worker reads whole fetches itself: a partition not fetched yet, or read ahead while a fetch's slices are
    processed, is no fault (seeking it threw away its fetch and starved it into idle advance)."""
    dog, consumer, _ = make()
    consumer.highwaters.update({O0: 252, O1: 57})
    consumer._read_offset[O1] = 40
    assert twice(dog) == (0, 0) and consumer.seeks == []


def test_a_flow_left_suspended_outside_a_rebalance_is_resumed_on_the_second_look() -> None:
    dog, consumer, app = make()
    consumer.suspend_flow.set()
    app.flow_control.active = False
    assert twice(dog) == (0, 1)
    assert not consumer.suspend_flow.is_set() and app.flow_control.is_active()


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


def test_a_group_error_no_fetch_was_waiting_for_is_taken_so_the_group_is_joined_again() -> None:
    """A failed rebalance while no fetch waits (faust waits for the flow to resume first): aiokafka's coordinator
    waits for someone to take the error, and until then the worker stands still for good (seen in the broker
    restart test with the leader's assignment made to fail)."""

    async def main() -> tuple[int, int, bool]:
        dog, consumer, app = make()
        app.rebalancing = True
        coordinator = BorrowedCoordinator()
        consumer._thread = SimpleNamespace(_consumer=SimpleNamespace(_coordinator=coordinator), call_thread=_call)  # type: ignore[attr-defined]
        coordinator._coordination_task = asyncio.ensure_future(coordinator.routine(KafkaError("assignment failed"), fetch_waiting=False))
        before = await dog.check()  # nothing pushed yet
        while coordinator._pending_exception is None:
            await asyncio.sleep(0)
        taken = await dog.check()
        await asyncio.wait_for(coordinator._coordination_task, 1)
        return before, taken, coordinator.joined_again

    assert asyncio.run(main()) == (0, 1, True)


async def _call(fn: Any) -> Any:
    return fn()
