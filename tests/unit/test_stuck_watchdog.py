"""The stuck-partition watchdog: a partition read past its committed offset with nothing pending is sought back."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

from streams.stuck import StuckPartitionWatchdog


class Pending:
    def __init__(self, tp: str) -> None:
        self.tp = tp


class FakeConsumer:
    """What the watchdog reads of faust's consumer (unit test double)."""

    def __init__(self) -> None:
        self.tps = ["orders-0", "orders-1", "state-changelog-0"]
        self._read_offset: dict[str, int | None] = {}
        self._committed_offset: dict[str, int | None] = {}
        self._unacked_messages: set[Any] = set()
        self.seeks: list[tuple[str, int]] = []
        self.highwaters: dict[str, int] = {}

    def highwater(self, tp: str) -> int | None:
        return self.highwaters.get(tp)

    def assignment(self) -> list[str]:
        return self.tps

    async def seek(self, tp: str, offset: int) -> None:
        self.seeks.append((tp, offset))
        self._read_offset[tp] = offset


def make(rebalancing: bool = False, next_offsets: dict[str, int] | None = None) -> tuple[StuckPartitionWatchdog, FakeConsumer, Any]:
    consumer = FakeConsumer()
    completed = asyncio.Event()
    completed.set()
    app = SimpleNamespace(consumer=consumer, rebalancing=rebalancing, tables=SimpleNamespace(recovery=SimpleNamespace(completed=completed)))
    offsets = next_offsets or {}
    return StuckPartitionWatchdog(app, exclude=lambda tp: "changelog" in tp, next_offset=offsets.get), consumer, app


def test_a_partition_read_past_its_commit_with_nothing_pending_is_sought_back_on_the_second_look() -> None:
    dog, consumer, _ = make()
    consumer._read_offset.update({"orders-0": 296, "orders-1": 99, "state-changelog-0": 500})
    consumer._committed_offset.update({"orders-0": 271, "orders-1": 100, "state-changelog-0": 3})
    assert asyncio.run(dog.check()) == 0  # first look: only a suspect
    assert asyncio.run(dog.check()) == 1
    assert consumer.seeks == [("orders-0", 271)]  # orders-1 committed what it read; changelogs are not streams


def test_progress_or_pending_messages_mean_not_stuck() -> None:
    dog, consumer, _ = make()
    consumer._read_offset["orders-0"] = 296
    consumer._committed_offset["orders-0"] = 271
    asyncio.run(dog.check())
    consumer._committed_offset["orders-0"] = 280  # it moved: a healthy partition catching up
    assert asyncio.run(dog.check()) == 0
    consumer._unacked_messages.add(Pending("orders-0"))
    assert asyncio.run(dog.check()) == 0 and asyncio.run(dog.check()) == 0
    assert consumer.seeks == []


def test_nothing_is_done_while_rebalancing() -> None:
    dog, consumer, app = make(rebalancing=True)
    consumer._read_offset["orders-0"] = 10
    consumer._committed_offset["orders-0"] = None
    assert asyncio.run(dog.check()) == 0 and asyncio.run(dog.check()) == 0
    app.rebalancing = False
    asyncio.run(dog.check())
    assert asyncio.run(dog.check()) == 1 and consumer.seeks == [("orders-0", 0)]


def test_a_partition_never_fetched_with_unread_messages_is_sought_to_the_workers_next_offset() -> None:
    """After a restart, no read and no committed offset, messages beyond where the worker's state says it is."""
    dog, consumer, _ = make(next_offsets={"orders-0": 120, "orders-1": 57})
    consumer.highwaters.update({"orders-0": 252, "orders-1": 57, "state-changelog-0": 1834})
    assert asyncio.run(dog.check()) == 0  # first look: only a suspect
    assert asyncio.run(dog.check()) == 1
    assert consumer.seeks == [("orders-0", 120)]  # orders-1 has nothing unread; changelogs are not streams
    consumer._committed_offset["orders-0"] = 130  # it reads and commits again: not sought again
    assert asyncio.run(dog.check()) == 0 and asyncio.run(dog.check()) == 0 and len(consumer.seeks) == 1


def test_a_partition_never_fetched_that_the_worker_never_read_starts_from_the_beginning() -> None:
    dog, consumer, _ = make()
    consumer.highwaters["orders-1"] = 9
    asyncio.run(dog.check())
    assert asyncio.run(dog.check()) == 1 and consumer.seeks == [("orders-1", 0)]
