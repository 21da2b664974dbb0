"""Cohort rules across workers: N engines, each owning some input partitions and the same-numbered group
partitions, exchange cohort records and partition marks through in-memory "topics" (as a repartition topic
carries them), and together raise exactly the alerts of one engine over all the events. Workers run at
their own pace, and a worker that crashes loses what it did since an earlier commit and does it again
(its messages delivered twice): nothing is lost and nothing is counted twice."""

from __future__ import annotations

import copy
import random
from dataclasses import replace
from typing import Any

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rules.loader import load_rules
from streams.assembly import build_engine
from streams.config import default_rules_dir, load_config
from streams.engine import DictBackend, Engine
from streams.engine.exchange import (
    Bundle,
    CohortMessage,
    ExchangeIn,
    Forwarded,
    Marks,
    PartitionMark,
    decode_message,
    encode_message,
    pack,
    split,
)
from streams.partitioning import partition_for
from tests.golden.runs import CASES, GOLDEN_DIR
from tests.helpers import to_event
from yujing.alerts import Alert
from yujing.cohort import CohortRecord

PARTITIONS = 8


def pack_engine(backend: DictBackend, exchange: bool) -> Engine:
    loaded = load_rules(default_rules_dir())
    assert loaded.ok, loaded.errors
    config = load_config(None, environ={"YUJING_ALERTING_SILENCES": str(GOLDEN_DIR / "no-silences.jsonl")})
    engine_config = replace(config.engine.engine_config(idle=False), exchange=exchange, partitions=PARTITIONS)
    engine, _ = build_engine(loaded.rules, backend, config, engine_config, rules_dir=default_rules_dir())
    return engine


def case_events(name: str) -> dict[int, list[Any]]:
    by_partition: dict[int, list[Any]] = {p: [] for p in range(PARTITIONS)}
    for line in CASES[name].lines():
        event = to_event(msgspec.json.decode(line))
        by_partition[partition_for(event.customer_id, PARTITIONS)].append(event)
    return by_partition


Seen = set[tuple[str, str, str, str, str]]


def seen(alerts: list[Alert]) -> Seen:
    """What the sinks keep of each alert (a replay may deliver one twice: the sinks keep it once, by id)."""
    return {(a.rule_id, a.alert_id, a.status, a.starts_at.isoformat(), a.summary) for a in alerts}


def one_engine(events: dict[int, list[Any]]) -> Seen:
    engine = pack_engine(DictBackend(), exchange=False)
    out: list[Alert] = []
    cursors = dict.fromkeys(events, 0)
    while any(cursors[p] < len(events[p]) for p in events):  # every partition a little at a time, as a worker reads
        batch = []
        for p in events:
            batch += [(p, e) for e in events[p][cursors[p] : cursors[p] + 40]]
            cursors[p] += 40
        out += engine.process(batch)
        engine.commit()
    out += engine.close_input()
    return seen(out)


class SimWorker:
    """A worker: its input partitions, the same-numbered group partitions, its state, and what it committed."""

    def __init__(self, owned: list[int], events: dict[int, list[Any]]) -> None:
        self.owned, self.events = owned, events
        self.backend = DictBackend()
        self.engine = pack_engine(self.backend, exchange=True)
        self.cursors = dict.fromkeys(owned, 0)  # next input event per partition
        self.read = dict.fromkeys(owned, 0)  # next message per group partition
        self.commits: list[tuple[Any, dict[int, int], dict[int, int]]] = []
        self.commit()

    def commit(self) -> None:
        self.engine.commit()
        self.commits.append((copy.deepcopy(self.backend.namespaces), dict(self.cursors), dict(self.read)))

    def crash(self, rng: random.Random) -> None:
        """Lose everything since a recent commit: state, input positions and topic positions go back together."""
        namespaces, cursors, read = self.commits[max(0, len(self.commits) - 1 - rng.randrange(4))]
        self.backend = DictBackend()
        self.backend.namespaces = copy.deepcopy(namespaces)
        self.engine = pack_engine(self.backend, exchange=True)  # new rule objects: nothing in memory
        self.engine.recover()
        self.cursors, self.read = dict(cursors), dict(read)

    def input_left(self) -> bool:
        return any(self.cursors[p] < len(self.events[p]) for p in self.owned)

    def process_input(self, rng: random.Random, topics: dict[int, list[bytes]]) -> list[Alert]:
        batch = []
        for p in self.owned:
            n = rng.randrange(1, 120)
            batch += [(p, e) for e in self.events[p][self.cursors[p] : self.cursors[p] + n]]
            self.cursors[p] += n
        out = self.engine.process(batch)
        self.send(topics)
        return out

    def send(self, topics: dict[int, list[bytes]]) -> None:
        for q, message in self.engine.take_exchange():
            topics[q].append(encode_message(message))

    def consume(self, rng: random.Random, topics: dict[int, list[bytes]]) -> list[Alert]:
        messages = []
        for q in self.owned:
            end = min(len(topics[q]), self.read[q] + rng.randrange(1, 400))
            messages += [(q, decode_message(m)) for m in topics[q][self.read[q] : end]]
            self.read[q] = end
        return self.engine.accept(messages)


def many_workers(events: dict[int, list[Any]], workers: int, seed: int, crashes: int) -> Seen:
    rng = random.Random(seed)
    partitions = list(range(PARTITIONS))
    rng.shuffle(partitions)
    pool = [SimWorker(sorted(partitions[w::workers]), events) for w in range(workers)]
    topics: dict[int, list[bytes]] = {q: [] for q in range(PARTITIONS)}
    out: list[Alert] = []
    crash_at = set(rng.sample(range(10, 200), crashes))
    step = 0
    while any(w.input_left() for w in pool):
        step += 1
        worker = rng.choice(pool)
        if step in crash_at:
            worker.crash(rng)
            continue
        out += worker.process_input(rng, topics) if worker.input_left() and rng.random() < 0.6 else worker.consume(rng, topics)
        worker.commit()
    for worker in pool:  # the end of a finite input: the last marks go out, then every group partition is read to its end
        out += worker.engine.close_input()
        worker.send(topics)
    for worker in pool:
        while any(worker.read[q] < len(topics[q]) for q in worker.owned):
            out += worker.consume(rng, topics)
        out += worker.engine.close_cohort()
    return seen(out)


@pytest.fixture(scope="module")
def outage() -> tuple[dict[int, list[Any]], Seen]:
    events = case_events("outage-1")
    assert all(events.values()), "every partition has events"
    return events, one_engine(events)


@pytest.mark.parametrize(("workers", "seed", "crashes"), [(1, 1, 0), (2, 2, 0), (3, 3, 0), (3, 4, 3)])
def test_n_workers_raise_the_alerts_of_one_engine(outage: Any, workers: int, seed: int, crashes: int) -> None:
    events, expected = outage
    assert {"complaint-spike", "complaint-hot-words"} <= {rule for rule, *_ in expected}  # cohort rules fired
    got = many_workers(events, workers, seed, crashes)
    assert (sorted(got - expected)[:5], sorted(expected - got)[:5]) == ([], []), (len(got - expected), len(expected - got))


@st.composite
def exchange_batches(draw: st.DrawFn) -> list[tuple[int, CohortMessage]]:
    """What a partition stage forwards over a few batches: numbered records (consecutive per input stream and
    group partition) then marks, as ``Engine.take_exchange`` lists them before packing."""
    import datetime as dt

    seq: dict[tuple[int, int, str], int] = {}
    out: list[tuple[int, CohortMessage]] = []
    at = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    for b in range(draw(st.integers(1, 4))):
        for i in range(draw(st.integers(0, 30))):
            q, source, kind = draw(st.integers(0, 2)), draw(st.integers(0, 3)), draw(st.sampled_from(["orders", "complaints"]))
            n = seq[(q, source, kind)] = seq.get((q, source, kind), 0) + 1
            out.append((q, Forwarded(source, kind, n, CohortRecord("cohort:r", "k", at, f"e{b}-{i}", "p0"))))
        for source in draw(st.lists(st.integers(0, 3), max_size=4)):
            out += [(q, PartitionMark(source, float(b * 10 + source))) for q in range(3)]
    return out


def arrival(messages: list[tuple[int, CohortMessage]]) -> tuple[dict[int, list[str]], dict[int, dict[int, float]]]:
    """Per group partition, the records the cohort stage admits (ids, in order per input stream) and its marks."""
    into = ExchangeIn(DictBackend())
    records, marks = split([(q, decode_message(encode_message(m))) for q, m in messages], into.admit)
    by_q: dict[int, list[str]] = {}
    for q, record in records:
        by_q.setdefault(q, []).append(record.event_id)
    return {q: sorted(ids) for q, ids in by_q.items()}, marks


@given(exchange_batches(), st.integers(0, 60))
def test_packed_messages_deliver_each_record_once_and_before_the_marks_that_followed_it(
    messages: list[tuple[int, CohortMessage]], replayed_from: int
) -> None:
    packed = pack(messages)
    assert arrival(packed) == arrival(messages)
    assert len(packed) <= len(messages)
    # every record reaches its q before any mark of its input partition that followed it
    before: dict[tuple[int, int, float], set[tuple[str, int]]] = {}
    sent: dict[int, set[tuple[int, str, int]]] = {}
    for q, m in messages:
        if isinstance(m, Forwarded):
            sent.setdefault(q, set()).add((m.source, m.kind, m.seq))
        elif isinstance(m, PartitionMark):
            before.setdefault((q, m.source, m.mark), {(k, n) for s, k, n in sent.get(q, set()) if s == m.source})
    arrived: dict[int, set[tuple[int, str, int]]] = {}
    for q, m in packed:
        if isinstance(m, Bundle):
            arrived.setdefault(q, set()).update((m.source, m.kind, m.first + i) for i in range(len(m.records)))
        elif isinstance(m, Marks):
            for source, mark in m.marks:
                assert before[(q, source, mark)] <= {(k, n) for s, k, n in arrived.get(q, set()) if s == source}
    # a crash replays the messages from some point, cut into batches afresh: each record still counted once
    again = packed + pack(messages[min(replayed_from, len(messages)) :])
    assert arrival(again)[0] == arrival(messages)[0]


def test_records_numbered_with_a_gap_go_as_two_bundles() -> None:
    import datetime as dt

    record = CohortRecord("cohort:r", "k", dt.datetime(2026, 1, 1, tzinfo=dt.UTC), "e", "p0")
    packed = pack([(0, Forwarded(1, "complaints", n, record)) for n in (1, 2, 5)])
    assert [(m.first, len(m.records)) for _, m in packed if isinstance(m, Bundle)] == [(1, 2), (5, 1)]
