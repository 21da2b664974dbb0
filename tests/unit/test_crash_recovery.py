"""A worker killed while it sends its changelog: the worker's batch loop, without faust or a broker.

The loop is the worker's (:mod:`streams.worker`): admit the batch's records against the input
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
from streams.decode import Decoder
from streams.engine import Engine, EngineConfig
from streams.engine.engine import WATERMARK_NAMESPACE
from streams.faust_state import FaustBackend
from streams.partitioning import partition_for
from streams.pipeline import Pipeline, Record
from streams.positions import POSITIONS_NAMESPACE, InputPositions
from streams.simulator import SimConfig, simulate
from tests.helpers import StandInTable
from yujing.events import event_kind

PARTITIONS = 8
TOPICS = {"orders": "orders", "billing": "billing", "complaints": "complaints"}


class Killed(BaseException):
    """The process died here (not an error anything may catch and retry)."""


@dataclass
class Changelog:
    """The changelog topic: one log per partition, and a producer that may be killed after ``budget`` messages."""

    logs: dict[int, list[tuple[bytes, bytes | None]]] = field(default_factory=dict)
    budget: float = float("inf")

    async def send_wave(self, topic: str, wave: Sequence[tuple[int, bytes, bytes | None]]) -> list[object]:
        for partition, key, value in wave:  # a kill mid-wave leaves each partition's log with a prefix of its part
            if self.budget <= 0:
                raise Killed
            self.budget -= 1
            self.logs.setdefault(partition, []).append((key, value))
        return []

    def recover(self) -> StandInTable:
        """A new table filled from the log, partition by partition, the last value of a key winning."""
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
    """The worker's batch loop over a :class:`FaustBackend` on a stand-in table."""

    def __init__(self, table: StandInTable, changelog: Changelog, sink: Collect) -> None:
        self.changelog = changelog
        self.backend = FaustBackend(table, markers=(WATERMARK_NAMESPACE, POSITIONS_NAMESPACE), first=("~outbox",))
        config = EngineConfig(idle_after=None, partitions=PARTITIONS)
        self.engine = Engine(load_rules(default_rules_dir()).rules + COHORT_RULE, self.backend, config)
        self.pipeline = Pipeline(self.engine, Decoder(TOPICS), [sink])
        self.positions = InputPositions(self.backend, every_offset_exists)
        self.backend.replay_journal()
        self.engine.recover()
        self.positions.forget()
        self.pipeline.recover()

    async def handle(self, records: list[Record]) -> None:
        admitted, seeks = await self.positions.admit(records)
        assert not seeks
        alerts, _ = self.pipeline.process([records[i] for i in admitted])
        self.positions.store()
        self.pipeline.deliver(alerts)
        self.pipeline.commit()
        await self.backend.send_changelog(self.changelog)

    async def close(self) -> None:
        alerts = self.engine.close_input()
        self.pipeline.deliver(alerts)
        self.pipeline.commit()
        await self.backend.send_changelog(self.changelog)


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


def run(records: list[Record], kills: Sequence[int]) -> Collect:
    """Feed ``records`` in batches; the n-th kill stops the changelog after ``kills[n]`` more messages.

    After a kill the worker restarts from the changelog and is handed the input again from a
    few batches back (the consumer's committed offset trails what state holds).
    """
    sink = Collect()
    changelog = Changelog()
    work = batches(records, 97)
    pending = list(kills)

    async def go() -> None:
        worker = ModelWorker(StandInTable(), changelog, sink)
        i = 0
        changelog.budget = pending.pop(0) if pending else float("inf")
        while i < len(work):
            try:
                await worker.handle(work[i])
                i += 1
            except Killed:
                worker = ModelWorker(changelog.recover(), changelog, sink)
                i = max(0, i - 3)
                changelog.budget = pending.pop(0) if pending else float("inf")
        await worker.close()

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
