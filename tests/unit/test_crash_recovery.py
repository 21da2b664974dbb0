"""A worker killed while it sends its changelog: the worker's batch loop, without faust or a broker.

The loop is the worker's own class (:class:`streams.worker_loop.WorkerLoop`, which :mod:`streams.worker`
wires to faust): admit the batch's records against the input
positions in state, run the pipeline, deliver the alerts, commit, send the changelog. A kill
is a producer that stops after some number of messages: the changelog then ends with a prefix
of the batch's writes, as a SIGKILL leaves it. A restart rebuilds the store from that
changelog (as faust's table recovery does), recovers, and reads the input again from an
earlier offset. Whatever the kill points, the alerts delivered must be those of a run that
was never killed: none missing (a replay over a part of its own effects must not count twice
or skip), none new.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence
from dataclasses import dataclass, field

import pytest

from rules import load_rules
from rules.loader import load_rule_text
from streams.backtest import Collect
from streams.config import default_rules_dir
from streams.decode import DeadLetter, Decoder
from streams.engine import Engine, EngineConfig
from streams.engine.engine import WATERMARK_NAMESPACE
from streams.faust_state import FaustBackend
from streams.journal import Write
from streams.partitioning import partition_for
from streams.pipeline import Pipeline, Record
from streams.positions import POSITIONS_NAMESPACE, InputPositions
from streams.simulator import SimConfig, simulate
from streams.worker_loop import WorkerLoop
from tests.helpers import StandInTable
from yujing.events import event_kind

PARTITIONS = 8
COHORT_TOPIC = "yujing-cohort"
TOPICS = {"orders": "orders", "billing": "billing", "complaints": "complaints"}


class Killed(BaseException):
    """The process died here (not an error anything may catch and retry)."""


@dataclass
class Broker:
    """The changelog and the cohort topic, one log per partition each, and a producer that may be killed after
    ``budget`` messages (to either topic: a kill can land in a batch's cohort records too)."""

    logs: dict[int, list[tuple[bytes, bytes | None]]] = field(default_factory=dict)
    cohort: dict[int, list[bytes]] = field(default_factory=dict)
    budget: float = float("inf")

    async def send_wave(self, topic: str, wave: Sequence[Write], tail: Sequence[Write] = ()) -> list[object]:
        for partition, key, value in [*wave, *tail]:  # a kill mid-wave leaves each partition's log with a prefix of its part
            if self.budget <= 0:
                raise Killed
            self.budget -= 1
            if topic == COHORT_TOPIC:
                assert value is not None
                self.cohort.setdefault(partition, []).append(value)
            else:
                self.logs.setdefault(partition, []).append((key, value))
        return []

    def cohort_records(self, read: dict[int, int]) -> list[Record]:
        """The cohort topic's records from ``read`` on (a consumer's positions), moving ``read`` to the end."""
        out = []
        for partition, log in sorted(self.cohort.items()):
            start = read.get(partition, 0)
            out += [Record(COHORT_TOPIC, partition, offset, b"", log[offset]) for offset in range(start, len(log))]
            read[partition] = len(log)
        return out

    def recover(self) -> StandInTable:
        """A new table filled from the changelog, partition by partition, the last value of a key winning."""
        table = StandInTable()
        for partition, log in self.logs.items():
            for key, value in log:
                if value is None:
                    table.data.data.pop(key, None)
                    table.data._key_partition.pop(key, None)
                else:
                    table.data.data[key] = value
                    table.data._key_partition[key] = partition
        return table


async def every_offset_exists(topic: str, partition: int, offset: int) -> int:
    return offset


class ModelWorker:
    """The worker's batch loop (:class:`~streams.worker_loop.WorkerLoop`, the class the faust worker runs) over a
    :class:`FaustBackend` on a stand-in table, its changelog and cohort topic in memory."""

    def __init__(self, table: StandInTable, broker: Broker, sink: Collect, exchange: bool) -> None:
        backend = FaustBackend(table, markers=(WATERMARK_NAMESPACE, POSITIONS_NAMESPACE), first=("~outbox",))
        config = EngineConfig(idle_after=None, partitions=PARTITIONS, exchange=exchange)
        self.engine = Engine(load_rules(default_rules_dir()).rules + COHORT_RULE, backend, config)
        self.dead: list[DeadLetter] = []
        self.loop = WorkerLoop(
            Pipeline(self.engine, Decoder(TOPICS), [sink]),
            backend,
            InputPositions(backend, every_offset_exists),
            broker,
            self.seek,
            self.send_dead,
            cohort_topic=COHORT_TOPIC if exchange else "",
        )
        self.loop.recover(range(PARTITIONS))

    async def seek(self, topic: str, partition: int, offset: int) -> None:
        raise AssertionError(f"a restart reads from at or before where the state ends, never a gap: {topic}[{partition}]@{offset}")

    async def send_dead(self, letter: DeadLetter) -> None:
        self.dead.append(letter)

    async def handle(self, records: list[Record], persist: bool = True) -> None:
        await self.loop.handle(records, persist=persist)

    async def close(self) -> None:
        await self.loop.close_input()


#: A cohort-stage rule that alerts on this small day (the default pack's cohort detectors need a week to warm up).
COHORT_RULE = load_rule_text(
    """
id: hotline-silent
type: flatline
title: 热线进线静默
severity: major
on: [complaint.opened, complaint.updated]
where: {channel: 10000热线}
group_by: channel
window: 3h
fewer_than: 1
summary: "{channel} 已 {window} 没有投诉进线"
""",
    "hotline-silent.yaml",
).rules


def records_of_a_day() -> list[Record]:
    """A small simulation as the worker reads it: each topic-partition in offset order, fetched in batches of them."""
    sim = simulate(SimConfig(seed=13, customers=300, orders_per_day=150, complaints_per_day=120, bills_per_day=30, history_days=2, days=1))
    offsets: dict[tuple[str, int], int] = {}
    records = []
    for event, line in zip(sim.events, sim.lines(), strict=True):
        topic = event_kind(event["event_type"]) or ""
        partition = partition_for(event["customer_id"], PARTITIONS)
        offset = offsets.get((topic, partition), 0)
        offsets[(topic, partition)] = offset + 1
        records.append(Record(topic, partition, offset, event["customer_id"].encode(), line))
    return records


def batches(records: list[Record], size: int) -> list[list[Record]]:
    return [records[i : i + size] for i in range(0, len(records), size)]


def delivered(sink: Collect) -> set[tuple[str, str]]:
    return {(a.alert_id, a.status) for a in sink.alerts}


def run(
    records: list[Record], kills: Sequence[int], exchange: bool = False, persist_every: int = 1, broker: Broker | None = None
) -> Collect:
    """Feed ``records`` in batches; the n-th kill stops the producer after ``kills[n]`` more messages.

    With ``persist_every`` n, the state is committed after every n-th batch only (the others handled with
    ``persist=False``, as the worker handles the slices of one fetch).

    After a kill the worker restarts from the changelog and is handed the input again from a
    few batches back (the consumer's committed offset trails what state holds), and the cohort
    topic from its start. With ``exchange`` the cohort stage's records and marks go through the
    cohort topic, read back after each input batch (and, at the end, until nothing new comes).
    """
    sink = Collect()
    broker = broker or Broker()
    work = batches(records, 97)
    pending = list(kills)
    read: dict[int, int] = {}

    async def go() -> None:
        nonlocal read
        worker = ModelWorker(StandInTable(), broker, sink, exchange)
        i = 0
        broker.budget = pending.pop(0) if pending else float("inf")
        while True:
            try:
                if i < len(work):
                    await worker.handle(work[i], persist=(i + 1) % persist_every == 0)
                    i += 1
                    if exchange:
                        await worker.handle(broker.cohort_records(read))
                    continue
                await worker.close()
                if not exchange:
                    return
                # the end of the input: the last marks went out; read the cohort topic until it has no more
                while tail := broker.cohort_records(read):
                    await worker.handle(tail)
                await worker.loop.commit(worker.engine.close_cohort(), [])
                return
            except Killed:
                worker = ModelWorker(broker.recover(), broker, sink, exchange)
                i = max(0, i - 2 - persist_every)  # from before the last commit
                read = {}
                broker.budget = pending.pop(0) if pending else float("inf")

    asyncio.run(go())
    return sink


@pytest.fixture(scope="module")
def uninterrupted() -> tuple[list[Record], Collect]:
    records = records_of_a_day()
    return records, run(records, [])


@pytest.fixture(scope="module")
def day(uninterrupted: tuple[list[Record], Collect]) -> tuple[list[Record], set[tuple[str, str]]]:
    records, sink = uninterrupted
    return records, delivered(sink)


def test_the_model_raises_alerts_of_both_stages(uninterrupted: tuple[list[Record], Collect]) -> None:
    _, sink = uninterrupted
    rules = {a.rule_id for a in sink.alerts}
    assert "hotline-silent" in rules  # the cohort stage's, lost before the journal
    assert any(r.startswith("install-") for r in rules), rules


@pytest.mark.parametrize("seed", range(4))
def test_kills_mid_changelog_lose_and_add_nothing(day: tuple[list[Record], set[tuple[str, str]]], seed: int) -> None:
    records, expected = day
    rng = random.Random(seed)
    # one message per changed key: a kill point lands anywhere in a batch's changelog
    kills = [rng.randrange(1, 4000) for _ in range(5)]
    got = delivered(run(records, kills))
    assert not expected - got, f"missing after kills at {kills}: {sorted(expected - got)[:10]}"
    assert not got - expected, f"new after kills at {kills}: {sorted(got - expected)[:10]}"


@pytest.mark.parametrize("seed", range(3))
def test_batches_committed_together_after_kills_lose_and_add_nothing(day: tuple[list[Record], set[tuple[str, str]]], seed: int) -> None:
    """Slices of a fetch share one commit: a kill before it loses their state, and the restart reads them again
    from the positions the state holds, raising the same alerts (delivered twice, with the same ids)."""
    records, expected = day
    rng = random.Random(200 + seed)
    kills = [rng.randrange(1, 4000) for _ in range(5)]
    got = delivered(run(records, kills, persist_every=4))
    assert not expected - got, f"missing after kills at {kills}: {sorted(expected - got)[:10]}"
    assert not got - expected, f"new after kills at {kills}: {sorted(got - expected)[:10]}"


def test_batches_committed_together_send_each_key_s_state_once(day: tuple[list[Record], set[tuple[str, str]]]) -> None:
    """What several batches write to one key goes as one changelog message, not one per batch."""
    records, expected = day
    each, together = Broker(), Broker()
    assert delivered(run(records, [], broker=each)) == expected
    assert delivered(run(records, [], persist_every=4, broker=together)) == expected
    sent = {name: sum(map(len, broker.logs.values())) for name, broker in (("each", each), ("together", together))}
    assert sent["together"] < 0.7 * sent["each"], sent


def test_cohort_records_through_the_cohort_topic_raise_the_same_alerts(day: tuple[list[Record], set[tuple[str, str]]]) -> None:
    """The loop's cohort path (records and marks out to the cohort topic, back in through admit and the
    cohort stage) gives what the in-process cohort stage gives."""
    records, expected = day
    got = delivered(run(records, [], exchange=True))
    assert (sorted(expected - got)[:5], sorted(got - expected)[:5]) == ([], [])


@pytest.mark.parametrize("seed", range(3))
def test_kills_mid_changelog_or_cohort_records_lose_and_add_nothing(day: tuple[list[Record], set[tuple[str, str]]], seed: int) -> None:
    records, expected = day
    rng = random.Random(100 + seed)
    kills = [rng.randrange(1, 4000) for _ in range(5)]
    got = delivered(run(records, kills, exchange=True))
    assert not expected - got, f"missing after kills at {kills}: {sorted(expected - got)[:10]}"
    assert not got - expected, f"new after kills at {kills}: {sorted(got - expected)[:10]}"


def test_a_journal_cut_short_is_ignored_and_the_newest_whole_one_wins() -> None:
    from streams.journal import journal_messages, replay

    old = journal_messages([(2, b"k", b"old"), (2, b"j", b"x")], seq=1, limit=1)
    new = journal_messages([(0, b"h", b"1"), (2, b"k", b"new")], seq=2, limit=1)
    store = {key: value for _, key, value in old}
    store.update({key: value for _, key, value in new})
    assert sorted(replay(store.items())) == [(0, b"h", b"1"), (2, b"k", b"new")]
    # partition 2's own journal of batch 2 never arrived: the head (partition 0) still has its write
    cut = {key: value for p, key, value in new if p == 0}
    assert sorted(replay({**{k: v for _, k, v in old}, **cut}.items())) == [(0, b"h", b"1"), (2, b"k", b"new")]
    # the head cut short (one chunk of two): batch 2 sent nothing else, batch 1 stands
    head = [(key, value) for p, key, value in new if p == 0]
    assert len(head) == 2
    assert sorted(replay([*((k, v) for _, k, v in old), head[1]])) == [(2, b"j", b"x"), (2, b"k", b"old")]


def test_the_loop_s_tick_reads_again_what_the_consumer_handed_over_and_no_batch_processed(
    day: tuple[list[Record], set[tuple[str, str]]],
) -> None:
    """WorkerLoop.tick with the consumer's fetch positions: a partition fetched beyond what its batches processed,
    at two ticks in a row, is sought back to where they end (InputPositions.lost); one caught up is not."""
    records, _ = day
    sought: list[tuple[str, int, int]] = []

    class Worker(ModelWorker):
        async def seek(self, topic: str, partition: int, offset: int) -> None:
            sought.append((topic, partition, offset))

    worker = Worker(StandInTable(), Broker(), Collect(), exchange=False)
    first = records[:200]
    asyncio.run(worker.handle(first))
    ends: dict[tuple[str, int], int] = {}
    for r in first:
        ends[(r.topic, r.partition)] = r.offset + 1
    (ahead, end), (caught_up, caught_end) = sorted(ends.items())[:2]
    fetched = {ahead: end + 40, caught_up: caught_end}
    asyncio.run(worker.loop.tick(None, fetched))
    assert sought == []  # one look: maybe a batch under way
    asyncio.run(worker.loop.tick(None, fetched))
    assert sought == [(*ahead, end)]
