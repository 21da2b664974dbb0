"""The faust-table state adapter, against a stand-in table (the real one is exercised by the worker tests)."""

from __future__ import annotations

from typing import Any

from streams.engine.timers import TimerEntry
from streams.faust_state import FaustBackend


class MemoryStore:
    def __init__(self) -> None:
        self.data: dict[bytes, bytes] = {}
        self._key_partition: dict[bytes, int] = {}


class StandInTable:
    def __init__(self) -> None:
        self.data = MemoryStore()
        self.changelog: list[tuple[int, bytes, bytes | None]] = []

    def send_changelog(self, partition: int, key: bytes, value: Any) -> None:
        self.changelog.append((partition, key, value))


def test_writes_are_batched_and_routed_to_their_partition() -> None:
    table = StandInTable()
    backend = FaustBackend(table)
    timers = backend.namespace("~timers", TimerEntry)
    backend.use_partition(3)
    timers.set("a", TimerEntry(1.0, 3))
    timers.set("a", TimerEntry(2.0, 3))
    backend.use_partition(5)
    timers.set("b", TimerEntry(5.0, 5))
    assert timers.get("a") == TimerEntry(2.0, 3) and table.changelog == []
    backend.flush()
    assert [(p, k) for p, k, _ in table.changelog] == [(3, b"~timers\x1fa"), (5, b"~timers\x1fb")]
    assert table.data._key_partition == {b"~timers\x1fa": 3, b"~timers\x1fb": 5}
    timers.delete("a")
    backend.flush()
    assert table.changelog[-1] == (3, b"~timers\x1fa", None) and timers.get("a") is None


def test_state_survives_a_new_backend_over_the_same_store() -> None:
    table = StandInTable()
    first = FaustBackend(table)
    first.namespace("ns", int).set("k", 7)
    first.flush()
    again = FaustBackend(table)
    assert again.namespace("ns", int).get("k") == 7
    assert list(again.namespace("ns", int).items()) == [("k", 7)]
