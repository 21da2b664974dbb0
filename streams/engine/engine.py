"""The engine: event time, timers, rule dispatch by event type, and alert dedup.

Semantics, per partition (the runners give the Kafka partition; the local
runner computes the same one from ``customer_id``):

0. The watermark of a partition is the minimum over its streams (see
   :mod:`streams.engine.watermark`), so topics read at different speeds
   do not make each other's events late.
1. An event whose ``ts`` is below the partition's watermark is *late*. It is
   counted and then, by ``late_policy``, processed like any other event
   (``process``, the default: rules see it, alerts already emitted stand) or
   dropped (``drop``).
2. The event moves the partition's max event time and so its watermark.
3. Timers at or before the new watermark fire, earliest first.
4. The rules registered for the event's type see it.

Rules are written so that the order of events within the allowed lateness
does not change the alerts they emit (see the tests' shuffle invariant).
Alerts pass the :class:`Deduplicator` before they leave the engine.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol, TypeVar

from streams.engine.dedup import Deduplicator
from streams.engine.timers import TimerEntry, Timers
from streams.engine.watermark import PartitionClock, Watermarks
from yujing.alerts import Alert
from yujing.events import BillEvent, ComplaintEvent, Event, OrderEvent
from yujing.protocols import KeyedState, Rule, StateBackend

__all__ = ["WATERMARK_NAMESPACE", "Engine", "EngineConfig", "EngineObserver"]

#: Where partition clocks live in keyed state (a runner may treat them as commit markers).
WATERMARK_NAMESPACE = "~watermarks"

log = logging.getLogger(__name__)
V = TypeVar("V")


@dataclass(frozen=True)
class EngineConfig:
    """Event-time settings.

    ``idle_after=None`` turns idle advance off (backtests: event time only).
    """

    allowed_lateness: float = 300.0
    idle_after: float | None = 30.0
    late_policy: Literal["process", "drop"] = "process"
    dedup_retention: float = 2 * 86400.0
    #: Streams every partition is expected to carry (with idle advance on, an unseen one holds the watermark until idle).
    streams: tuple[str, ...] = ("orders", "billing", "complaints")


class EngineObserver(Protocol):
    """Receives the engine's counts (the runners export them as metrics)."""

    def late_events(self, kind: str, count: int) -> None: ...

    def rule_error(self, rule_id: str) -> None: ...


class _NullObserver:
    def late_events(self, kind: str, count: int) -> None:
        pass

    def rule_error(self, rule_id: str) -> None:
        pass


_KIND: dict[type, str] = {OrderEvent: "orders", BillEvent: "billing", ComplaintEvent: "complaints"}


class Engine:
    """Runs rules over batches of ``(partition, event)`` in event time.

    >>> from streams.engine import DictBackend
    >>> engine = Engine([], DictBackend(), EngineConfig(idle_after=None))
    >>> engine.process([])
    []
    """

    def __init__(
        self,
        rules: Sequence[Rule],
        backend: StateBackend,
        config: EngineConfig | None = None,
        *,
        clock: Callable[[], float] = time.time,
        observer: EngineObserver | None = None,
    ) -> None:
        self.config = config or EngineConfig()
        self.backend = backend
        self.clock = clock
        self.observer: EngineObserver = observer or _NullObserver()
        self.watermarks = Watermarks(
            self.config.allowed_lateness,
            self.config.idle_after,
            backend.namespace(WATERMARK_NAMESPACE, PartitionClock),
            self.config.streams,
        )
        self.timers = Timers(backend.namespace("~timers", TimerEntry))
        self.dedup = Deduplicator(backend.namespace("~alerts", int), self.config.dedup_retention)
        self.partition = -1
        self.watermark = float("-inf")
        self._out: list[Alert] = []
        self.set_rules(rules)

    # -- rules ------------------------------------------------------------
    def set_rules(self, rules: Sequence[Rule]) -> None:
        """Install a rule set (state of rules kept by id survives).

        Rules are indexed by event type, and a rule with a ``guard`` (a field and the
        values it requires, see :mod:`rules.guards`) also by that field's value, so an
        event meets only the rules that can match it.
        """
        self.rules = list(rules)
        plain: dict[str, list[Rule]] = {}
        guarded: dict[str, dict[str, dict[str, list[Rule]]]] = {}
        for rule in self.rules:
            guard = getattr(rule, "guard", None)
            for event_type in rule.event_types:
                if guard is None:
                    plain.setdefault(event_type, []).append(rule)
                    continue
                field, values = guard
                by_value = guarded.setdefault(event_type, {}).setdefault(field, {})
                for value in values:
                    by_value.setdefault(value, []).append(rule)
        self.index = {k: tuple(v) for k, v in plain.items()}
        self.guarded = {
            t: tuple((field, {v: tuple(rs) for v, rs in by_value.items()}) for field, by_value in fields.items())
            for t, fields in guarded.items()
        }
        self.timer_handlers = {rule.rule_id: rule.on_timer for rule in self.rules}
        self.timer_handlers[Deduplicator.OWNER] = self.dedup.on_timer

    def rules_for(self, event: Event) -> tuple[Rule, ...]:
        """The rules an event meets: those of its type, less the guarded ones whose value it lacks."""
        rules = self.index.get(event.event_type, ())
        guarded = self.guarded.get(event.event_type)
        if guarded:
            for field, by_value in guarded:
                value = getattr(event, field, None)
                if value is not None:
                    extra = by_value.get(value if isinstance(value, str) else str(value))
                    if extra:
                        rules = rules + extra
        return rules

    # -- RuleContext ------------------------------------------------------
    def state(self, name: str, value_type: type[V]) -> KeyedState[V]:
        return self.backend.namespace(name, value_type)

    def set_timer(self, owner: str, key: str, fire_at: float) -> None:
        self.timers.set(self.partition, owner, key, fire_at)

    def cancel_timer(self, owner: str, key: str) -> None:
        self.timers.cancel(owner, key)

    def emit(self, alert: Alert) -> None:
        if self.dedup.admit(alert, self):
            self._out.append(alert)

    # -- processing -------------------------------------------------------
    def process(self, batch: Iterable[tuple[int, Event]]) -> list[Alert]:
        """Process a batch; returns the alerts it raised (deduplicated)."""
        out = self._out = []
        wall = self.clock()
        late: Counter[str] = Counter()
        watermarks, index, drop_late = self.watermarks, self.index, self.config.late_policy == "drop"
        guarded, rules_for = bool(self.guarded), self.rules_for
        for partition, event in batch:
            if partition != self.partition:
                self.partition = partition
                self.backend.use_partition(partition)
            ts = event.ts.timestamp()
            kind = _KIND[type(event)]
            before = watermarks.current(partition, wall)
            if ts < before:
                late[kind] += 1
                if drop_late:
                    continue
            watermarks.observe(partition, kind, ts, wall)
            mark = watermarks.current(partition, wall)
            self.watermark = mark
            due = self.timers.next_due(partition)
            if due is not None and due <= mark:
                self._fire_due(partition, mark)
            for rule in rules_for(event) if guarded else index.get(event.event_type, ()):
                try:
                    rule.on_event(event, ts, self)
                except Exception:
                    log.exception("rule %s failed on event %s", rule.rule_id, event.event_id)
                    self.observer.rule_error(rule.rule_id)
        for kind, count in late.items():
            self.observer.late_events(kind, count)
        return out

    def tick(self) -> list[Alert]:
        """Advance idle partitions' watermarks with wall-clock time and fire due timers."""
        out = self._out = []
        wall = self.clock()
        for partition in self.watermarks.partitions():
            self._fire_due(partition, self.watermarks.current(partition, wall))
        return out

    def close_input(self, until: float = float("-inf")) -> list[Alert]:
        """End of a finite input (backtest): fire every timer up to the last event time (or ``until``, if later)."""
        out = self._out = []
        for partition in self.watermarks.partitions():
            self._fire_due(partition, self.watermarks.close_input(partition, until))
        return out

    def set_idle_advance(self, idle_after: float | None) -> None:
        """Turn idle advance on (seconds of silence) or off (``None``), e.g. off while replaying history.

        Idle time counts from now for every partition, so switching it on never jumps a watermark.
        """
        self.watermarks.idle_after = idle_after
        wall = self.clock()
        for partition in self.watermarks.partitions():
            self.watermarks.first_wall[partition] = wall
            walls = self.watermarks.last_wall[partition]
            for stream in walls:
                walls[stream] = wall

    def commit(self) -> None:
        """Persist clocks and flush state writes; call after the batch's alerts are in the sinks."""
        self.watermarks.save(self.backend.use_partition)
        self.partition = -1  # the backend's partition moved; set it again before the next write
        self.backend.flush()

    def recover(self) -> int:
        """Reload watermarks and timers from state after a restart; returns the timer count."""
        self.watermarks.restore(self.clock())
        return self.timers.rebuild()

    def _fire_due(self, partition: int, mark: float) -> None:
        if partition != self.partition:
            self.partition = partition
            self.backend.use_partition(partition)
        self.watermark = mark
        for owner, key, fire_at in self.timers.pop_due(partition, mark):
            handler = self.timer_handlers.get(owner)
            if handler is None:
                continue
            try:
                handler(key, fire_at, self)
            except Exception:
                log.exception("timer of %s failed for key %s", owner, key)
                self.observer.rule_error(owner)
