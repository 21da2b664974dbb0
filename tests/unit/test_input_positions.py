"""Input positions: every record of a partition is processed once, in order, whatever the consumer does.

The consumer double below does what faust's consumer was seen to do: redeliver
from an older offset (a restart from a committed offset behind the state), skip
records it marked read but never delivered (the rebalance race), and keep
delivering records queued before a seek once the seek is made.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field

from hypothesis import given, settings
from hypothesis import strategies as st

from streams.engine.state import DictBackend
from streams.positions import POSITIONS_NAMESPACE, InputPositions, Probe


def broker(log: Sequence[int]) -> Probe:
    """A probe over one partition's log: the first offset at or after the one asked for."""

    async def probe(topic: str, partition: int, offset: int) -> int | None:
        return next((o for o in log if o >= offset), None)

    return probe


def positions(backend: DictBackend | None = None, log: Sequence[int] = range(1000)) -> InputPositions:
    return InputPositions(backend or DictBackend(), broker(log))


def admit(p: InputPositions, records: list[tuple[str, int, int]]) -> tuple[list[int], dict[tuple[str, int], int]]:
    return asyncio.run(p.admit(records))


@dataclass
class LyingConsumer:
    """One partition's log (offsets that exist, maybe with holes) and a consumer that misbehaves on demand."""

    log: list[int]
    position: int = 0  # index into log of the next record to fetch
    queued: list[int] = field(default_factory=list)  # fetched before the last seek, still to be delivered

    def fetch(self, n: int) -> list[int]:
        out = self.queued[:n]
        self.queued = self.queued[n:]
        while len(out) < n and self.position < len(self.log):
            out.append(self.log[self.position])
            self.position += 1
        return out

    def seek(self, offset: int, keep_queued: int) -> None:
        ahead = self.log[self.position : self.position + keep_queued]
        self.queued = self.queued + ahead  # what was in flight still arrives, then the re-fetch
        self.position = next((i for i, o in enumerate(self.log) if o >= offset), len(self.log))

    def done(self) -> bool:
        return self.position >= len(self.log) and not self.queued


class Ticks:
    """A clock that moves one second per batch."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def run(consumer: LyingConsumer, actions: list[tuple[str, int]], keep_queued: int) -> list[int]:
    clock = Ticks()
    p = InputPositions(DictBackend(), broker(consumer.log), patience=5, clock=clock)
    processed: list[int] = []

    def batch(n: int) -> None:
        clock.now += 1
        records = [("orders", 3, o) for o in consumer.fetch(n)]
        admitted, seeks = admit(p, records)
        processed.extend(records[i][2] for i in admitted)
        p.store()
        for (_, _), offset in seeks.items():
            consumer.seek(offset, keep_queued)

    batch(1)
    for action, n in actions:
        if action == "skip" and consumer.position + n < len(consumer.log):  # records after it reveal the gap
            consumer.position += n
        elif action == "redeliver":
            consumer.position = max(0, consumer.position - n)
        else:
            batch(n)
    for _ in range(10 * len(consumer.log) + 20):  # then an honest consumer, until every record is processed
        if consumer.done() and not p.rewinds:
            break
        batch(3)
        for offset in p.overdue().values():  # the runner's timer
            consumer.seek(offset, keep_queued)
    return processed


actions = st.lists(st.tuples(st.sampled_from(["fetch", "fetch", "skip", "redeliver"]), st.integers(1, 6)), max_size=30)


@settings(max_examples=300, deadline=None)
@given(
    holes=st.sets(st.integers(1, 59), max_size=8),
    actions=actions,
    keep_queued=st.integers(0, 5),
)
def test_each_record_is_processed_once_in_order_despite_redeliveries_skips_and_stale_queues(
    holes: set[int], actions: list[tuple[str, int]], keep_queued: int
) -> None:
    log = [o for o in range(60) if o not in holes]
    processed = run(LyingConsumer(log), actions, keep_queued)
    assert processed == log


def test_a_restart_behind_the_stored_position_skips_what_state_already_has() -> None:
    backend = DictBackend()
    admit(positions(backend), [("orders", 0, o) for o in range(10)])  # admitted, never stored
    first = positions(backend)
    admit(first, [("orders", 0, o) for o in range(10)])
    first.store()
    restarted = positions(backend)
    admitted, seeks = admit(restarted, [("orders", 0, o) for o in range(7, 12)])
    assert admitted == [3, 4] and not seeks
    skipped, _, _ = restarted.take_counts()
    assert skipped == {("orders", "duplicate"): 3}
    assert backend.namespace(POSITIONS_NAMESPACE, int).get("orders:0") == 10  # stored only by store()


def test_a_commit_ahead_of_the_state_is_read_again_from_the_stored_position() -> None:
    backend = DictBackend()
    before = positions(backend)
    admit(before, [("complaints", 1, o) for o in range(5)])
    before.store()
    after = positions(backend)  # the consumer resumes at 9: 5..8 were acknowledged but never stored
    admitted, seeks = admit(after, [("complaints", 1, 9), ("complaints", 1, 10)])
    assert admitted == [] and seeks == {("complaints", 1): 5}
    admitted, seeks = admit(after, [("complaints", 1, o) for o in range(5, 11)])
    assert admitted == [0, 1, 2, 3, 4, 5] and not seeks
    skipped, seek_counts, gaps = after.take_counts()
    assert skipped == {("complaints", "beyond_gap"): 2} and seek_counts == {"complaints": 1} and not gaps


def test_offsets_that_hold_no_records_are_stepped_over_without_a_seek() -> None:
    p = positions(log=[0, 1, 3, 4, 7, 9])  # 2, 5, 6, 8: transaction markers
    assert admit(p, [("billing", 0, 0), ("billing", 0, 1), ("billing", 0, 3)]) == ([0, 1, 2], {})
    assert admit(p, [("billing", 0, 4), ("billing", 0, 9)]) == ([0], {("billing", 0): 7})  # 7 exists: lost on the way
    assert p.expected[("billing", 0)] == 7  # 5 and 6 hold nothing: the position moved over them
    assert admit(p, [("billing", 0, 7), ("billing", 0, 9)]) == ([0, 1], {})
    assert p.take_counts()[2] == {"billing": 2}


def test_partitions_are_independent_and_forget_rereads_the_state() -> None:
    backend = DictBackend()
    p = positions(backend)
    admit(p, [("orders", 0, 0), ("orders", 1, 40), ("billing", 0, 7)])
    p.store()
    state = backend.namespace(POSITIONS_NAMESPACE, int)
    assert dict(state.items()) == {"orders:0": 1, "orders:1": 41, "billing:0": 8}
    state.set("orders:0", 20)  # e.g. the partition went to another worker and came back with newer state
    p.forget()
    assert admit(p, [("orders", 0, 19), ("orders", 0, 20)]) == ([1], {})
    assert p.next_offset("orders", 0) == 21 and p.next_offset("orders", 7) is None  # never read
    p.forget()
    assert p.next_offset("billing", 0) == 8  # read from the state again after a restart


def test_after_a_rebalance_a_partition_is_sought_to_where_the_state_ends_when_its_commit_is_beyond_or_unknown() -> None:
    backend = DictBackend()
    p = positions(backend)
    admit(p, [("orders", 0, 0), ("orders", 0, 1), ("billing", 3, 56), ("billing", 4, 9), ("orders", 6, 30)])
    p.store()
    p.forget()  # a rebalance: what the state holds decides
    # orders[0] committed where the state ends; billing[3] committed ahead of it; billing[4] never committed (or the
    # broker lost it); orders[6] committed behind (read again and skipped: a seek past it would stall faust's commits)
    # complaints[5..7]: nothing in the state (never read here, or read by a worker killed before its first changelog):
    # from the start, unless the consumer is there already
    committed = {("orders", 0): 2, ("billing", 3): 64, ("orders", 6): 25, ("complaints", 6): 0, ("complaints", 7): 31}.get
    partitions = [("orders", 0), ("billing", 3), ("billing", 4), ("orders", 6), ("complaints", 5), ("complaints", 6), ("complaints", 7)]
    starts = {("billing", 3): 57, ("billing", 4): 10, ("complaints", 5): 0, ("complaints", 7): 0}
    assert p.starts(partitions, committed) == starts
    assert p.take_counts()[1] == {"billing": 2, "complaints": 2}


def test_only_stored_positions_are_committable_and_each_once() -> None:
    """The runner commits what the state covers: nothing admitted but not yet stored, nothing twice."""
    p = positions()
    admit(p, [("orders", 0, 0), ("orders", 0, 1), ("billing", 3, 0)])
    assert p.take_committable() == {}  # admitted, processed maybe, not stored: the group must not move yet
    p.store()
    assert p.take_committable() == {("orders", 0): 2, ("billing", 3): 1}
    assert p.take_committable() == {}
    admit(p, [("orders", 0, 2)])
    p.store()
    admit(p, [("orders", 0, 3)])
    p.store()
    assert p.take_committable() == {("orders", 0): 4}


def test_records_handed_over_and_never_processed_are_read_again_after_two_looks() -> None:
    """The consumer's fetch position beyond what was processed, with nothing processed since the last look: those
    records went somewhere other than the worker's batches (the stall behind 1b07199), and no later record will
    show the gap. A partition still moving, one caught up, one already sought back, or one never read are left."""
    p = positions()
    admit(p, [("orders", 0, o) for o in range(5)] + [("billing", 1, o) for o in range(3)] + [("complaints", 2, 0)])
    fetched = {("orders", 0): 9, ("billing", 1): 3, ("complaints", 2): 4, ("cohort", 3): 7}
    assert p.lost(fetched) == {}  # a first look: maybe a batch under way
    assert p.lost(fetched) == {("orders", 0): 5, ("complaints", 2): 1}  # nothing processed since: read again
    assert p.take_counts()[1] == {"orders": 1, "complaints": 1}
    assert p.lost(fetched) == {}  # sought back: waiting for the re-fetch (overdue() repeats it after patience)
    admit(p, [("orders", 0, 5), ("complaints", 2, 1)])  # the re-fetch came
    assert p.lost({("orders", 0): 9}) == {}
    admit(p, [("orders", 0, 6)])  # moving: not lost
    assert p.lost({("orders", 0): 9}) == {}
    assert p.lost({("orders", 0): 7}) == {}  # …and caught up
