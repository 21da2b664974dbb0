"""Builders shared by the tests: events, rules from YAML text, and an engine run."""

from __future__ import annotations

import datetime as dt
import textwrap
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import msgspec

from rules.loader import load_rule_file
from streams.engine import DictBackend, Engine, EngineConfig
from streams.engine.state import DictState
from streams.partitioning import partition_for
from yujing.alerts import Alert
from yujing.events import TOPIC_KINDS, Event, event_kind
from yujing.protocols import Rule

T0 = dt.datetime(2026, 3, 1, 9, 0, tzinfo=dt.timezone(dt.timedelta(hours=8)))
TOPICS = {"orders": "orders", "billing": "billing", "complaints": "complaints"}


class CountingState(DictState[Any]):
    """A namespace that remembers every key written to it, in order (put it in ``DictBackend.namespaces`` before
    the engine first asks for the namespace)."""

    def __init__(self) -> None:
        super().__init__()
        self.written: list[str] = []

    def set(self, key: str, value: Any) -> None:
        self.written.append(key)
        super().set(key, value)


def at(minutes: float) -> str:
    """RFC 3339 time ``minutes`` after T0."""
    return (T0 + dt.timedelta(minutes=minutes)).isoformat()


def order(event_type: str, minutes: float, order_id: str = "ord-1", customer: str = "c-1", **extra: Any) -> dict[str, Any]:
    return {
        "event_id": f"{event_type}-{order_id}-{minutes}",
        "event_type": f"order.{event_type}",
        "ts": at(minutes),
        "customer_id": customer,
        "order_id": order_id,
        "product": "宽带",
        "region": "台州",
        "tier": "gold",
        **extra,
    }


def complaint(event_type: str, minutes: float, complaint_id: str = "cp-1", customer: str = "c-1", **extra: Any) -> dict[str, Any]:
    base = {
        "event_id": f"{event_type}-{complaint_id}-{minutes}",
        "event_type": f"complaint.{event_type}",
        "ts": at(minutes),
        "customer_id": customer,
        "complaint_id": complaint_id,
        "region": "杭州",
        "tier": "silver",
    }
    if event_type == "opened":
        base["text"] = "宽带断网了"
    return {**base, **extra}


def bill(minutes: float, bill_id: str = "b-1", customer: str = "c-1", **extra: Any) -> dict[str, Any]:
    return {
        "event_id": f"bill-{bill_id}-{minutes}",
        "event_type": "bill.issued",
        "ts": at(minutes),
        "customer_id": customer,
        "bill_id": bill_id,
        "cycle": "2026-03",
        "amount": 129.0,
        **extra,
    }


def to_event(data: dict[str, Any]) -> Event:
    kind = event_kind(data["event_type"])
    assert kind is not None
    return msgspec.json.decode(msgspec.json.encode(data), type=TOPIC_KINDS[kind])


def rules_from(tmp_path: Path, *texts: str) -> list[Rule]:
    out: list[Rule] = []
    for i, text in enumerate(texts):
        path = tmp_path / f"rule{i}.yaml"
        path.write_text(textwrap.dedent(text), encoding="utf-8")
        result = load_rule_file(path)
        assert result.ok, [str(e) for e in result.errors]
        out.extend(result.rules)
    return out


def spread_over_partitions(events: Iterable[dict[str, Any]], partitions: int = 8) -> list[tuple[int, Any]]:
    """Each event with the partition Kafka would give its customer, as the engine takes them."""
    return [(partition_for(e["customer_id"], partitions), to_event(e)) for e in events]


def run(
    rules: Sequence[Rule],
    events: Iterable[dict[str, Any]],
    *,
    lateness: float = 300.0,
    partition: int = 0,
    close: bool = True,
    engine: Engine | None = None,
    batch: int = 1,
    spread: bool = False,
) -> list[Alert]:
    """Feed events one batch at a time through an engine (event time only); returns the alerts."""
    engine = engine or Engine(rules, DictBackend(), EngineConfig(allowed_lateness=lateness, idle_after=None))
    evs = spread_over_partitions(events) if spread else [(partition, to_event(e)) for e in events]
    out: list[Alert] = []
    for i in range(0, len(evs), batch):
        out.extend(engine.process(evs[i : i + batch]))
        engine.commit()
    if close:
        out.extend(engine.close_input())
    return out


def run_with_restart(make_rules: Callable[[], list[Rule]], events: list[dict[str, Any]], cut: int, batch: int) -> list[Alert]:
    """The alerts of a run stopped after ``events[:cut]`` and restarted on the same state with new rule
    objects (nothing in memory), as a worker restarted after a crash."""
    backend = DictBackend()
    config = EngineConfig(allowed_lateness=300, idle_after=None)
    first = run([], events[:cut], engine=Engine(make_rules(), backend, config), batch=batch, close=False)
    restarted = Engine(make_rules(), backend, config)
    restarted.recover()
    return first + run([], events[cut:], engine=restarted, batch=batch)


def key(alert: Alert) -> tuple[Any, ...]:
    """What identifies an alert's content (not the wall-clock ``detected_at``)."""
    return (
        alert.alert_id,
        alert.status,
        alert.starts_at,
        alert.ends_at,
        alert.rule_id,
        alert.severity,
        tuple(sorted(alert.labels.items())),
        alert.summary,
    )


def keys(alerts: Iterable[Alert]) -> set[tuple[Any, ...]]:
    return {key(a) for a in alerts}


SLA_RULE = """
    id: install-sla
    type: sla
    title: 装机超时
    severity: major
    key: order_id
    start: {on: order.created}
    stop: {on: order.completed}
    cancel: {on: order.cancelled}
    deadline: 60m
    summary: "订单 {order_id} 超时 {deadline}"
"""

MATCH_RULE = """
    id: redline
    type: match
    title: 红线
    severity: critical
    on: complaint.opened
    where: {text: {contains_any: [工信部, "315"]}}
    key: complaint_id
    summary: "投诉 {complaint_id}: {text}"
"""


def shuffle_within(events: list[dict[str, Any]], rng: Any, lateness_minutes: float) -> list[dict[str, Any]]:
    """Reorder so that no event arrives after an event more than the lateness newer than it."""
    keyed = [
        ((dt.datetime.fromisoformat(e["ts"]) - T0).total_seconds() / 60 + rng.uniform(0, lateness_minutes * 0.99), i, e)
        for i, e in enumerate(events)
    ]
    keyed.sort()
    return [e for _, _, e in keyed]


def assert_arrival_order_and_replay_do_not_matter(
    rules: Sequence[Rule], events: list[dict[str, Any]], shuffle_seed: int, batch: int, *, spread: bool = False
) -> None:
    """The invariants every rule type keeps: shuffling within the lateness (5 min) changes no alert; a replay adds none."""
    import random

    ordered = run(rules, events, lateness=300, spread=spread)
    shuffled = run(rules, shuffle_within(events, random.Random(shuffle_seed), 5), lateness=300, batch=batch, spread=spread)
    assert keys(shuffled) == keys(ordered)
    engine = Engine(rules, DictBackend(), EngineConfig(allowed_lateness=300, idle_after=None))
    run(rules, events, engine=engine, close=False, spread=spread)
    assert run(rules, events, engine=engine, close=False, spread=spread) == []


def located_error(tmp_path: Path, rule_text: str, change: tuple[str, str]) -> str:
    """Load ``rule_text`` with one replacement made; it must load nothing; its first error."""
    path = tmp_path / "r.yaml"
    path.write_text(rule_text.replace(*change).replace("\n    ", "\n").lstrip(), encoding="utf-8")
    result = load_rule_file(path)
    assert not result.rules, "the changed rule should not load"
    return str(result.errors[0])


class MemoryStore:
    """What :class:`streams.faust_state.FaustBackend` uses of faust's memory store: the data and each key's partition."""

    def __init__(self) -> None:
        self.data: dict[bytes, bytes] = {}
        self._key_partition: dict[bytes, int] = {}


class _ChangelogTopic:
    @staticmethod
    def get_topic_name() -> str:
        return "state-changelog"


class StandInTable:
    """A faust Table as the state backend sees it, over a :class:`MemoryStore` (unit tests, benchmarks)."""

    changelog_topic = _ChangelogTopic()

    def __init__(self) -> None:
        self.data = MemoryStore()


#: `yujing simulate`'s daily volumes at its defaults' level whatever `--customers` says (its volumes follow the customer
#: count otherwise): the few customers the CLI tests simulate, for speed, with a day as busy as the default's.
VOLUMES = ("--orders-per-day", "500", "--complaints-per-day", "250", "--bills-per-day", "300")
