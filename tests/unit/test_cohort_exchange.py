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

from rules.loader import load_rules
from streams.assembly import build_engine
from streams.config import default_rules_dir, load_config
from streams.engine import DictBackend, Engine
from streams.engine.exchange import decode_message, encode_message
from streams.partitioning import partition_for
from tests.golden.runs import CASES, GOLDEN_DIR
from tests.helpers import to_event
from yujing.alerts import Alert

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
