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
3. The rules registered for the event's type see it.
4. Once the batch's events are in, the timers at or before each partition's
   new watermark fire in bulk, earliest first, each handler seeing the
   watermark at its own fire time. The batch is the unit of event time, as a
   watermark element is in Flink; rules already decide in event time (a
   stream read behind the others holds timers back while the others' events
   come in), so the alerts are the per-event engine's (the golden tests).
   A rule that holds the batch's events in memory meanwhile
   (:class:`~yujing.protocols.HoldsBatch`) then stores what is still held.

Rules are written so that the order of events within the allowed lateness
does not change the alerts they emit (see the tests' shuffle invariant).
Alerts pass the :class:`Deduplicator` before they leave the engine.
"""

from __future__ import annotations

import functools
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Literal, Protocol, TypeVar

import msgspec

from streams.alerting.manager import OPEN_RETENTION, AlertManager, Dispatch
from streams.alerting.policy import AlertPolicy
from streams.engine.dedup import Deduplicator
from streams.engine.exchange import IDLE, CohortMessage, ExchangeIn, ExchangeOut, Forwarded, PartitionMark, pack, split
from streams.engine.lifecycle import OneOffAlerts
from streams.engine.timers import TimerEntry, Timers
from streams.engine.watermark import PartitionClock, Watermarks
from streams.partitioning import partition_for
from yujing.alerts import Alert
from yujing.cohort import CohortRecord
from yujing.events import BillEvent, ComplaintEvent, Event, OrderEvent
from yujing.protocols import CachesState, HoldsBatch, KeepsTimers, KeyedState, Rule, RuleContext, StateBackend
from yujing.scores import Score

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
    #: How long an alert sent firing is remembered when no resolve comes (see the alert manager).
    open_retention: float = OPEN_RETENTION
    #: Streams every partition is expected to carry (with idle advance on, an unseen one holds the watermark until idle).
    streams: tuple[str, ...] = ("orders", "billing", "complaints")
    #: Input partitions (the cohort stage expects records from each, and spreads its groups over as many).
    partitions: int = 8
    #: Prefix of this engine's own state namespaces (the cohort stage's differ from the partition stage's).
    state_prefix: str = ""
    #: The cohort stage's watermarks follow the partitions' (``advance_marks``), not its records' times.
    driven_by_marks: bool = False
    #: Several workers: cohort records and partition marks leave through :meth:`Engine.take_exchange` (the runner
    #: sends them to a repartition topic) and the group partitions this runner owns take them in through
    #: :meth:`Engine.accept` (see :mod:`.exchange`). Off: the cohort stage runs here, on this engine's partitions.
    exchange: bool = False


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


@functools.lru_cache(maxsize=1024)
def _stream_name(partition: int) -> str:
    return f"p{partition}"


class _CohortSide:
    """A cohort rule as the cohort stage sees it: its records in, its timers."""

    def __init__(self, rule: Rule) -> None:
        self.rule = rule
        self.rule_id = rule.rule_id
        self.version = rule.version
        self.event_types = frozenset({"cohort:" + rule.rule_id})

    def on_event(self, record: Event, ts: float, ctx: RuleContext) -> None:
        self.rule.on_record(record, ts, ctx)  # type: ignore[attr-defined]

    def on_timer(self, key: str, fire_at: float, ctx: RuleContext) -> None:
        self.rule.on_timer(key, fire_at, ctx)


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
        alerting: AlertManager | None = None,
    ) -> None:
        self.config = config or EngineConfig()
        self.backend = backend
        self.clock = clock
        self.observer: EngineObserver = observer or _NullObserver()
        prefix = self.config.state_prefix
        self.watermarks = Watermarks(
            self.config.allowed_lateness,
            self.config.idle_after,
            backend.namespace(prefix + WATERMARK_NAMESPACE, PartitionClock),
            self.config.streams,
            required=self.config.driven_by_marks,
        )
        self.timers = Timers(backend.namespace(prefix + "~timers", TimerEntry))
        self.dedup = Deduplicator(backend.namespace(prefix + "~alerts", int), self.config.dedup_retention)
        self.alerting = alerting or AlertManager(
            AlertPolicy(), backend, self.config.dedup_retention, self.config.partitions, self.config.open_retention
        )
        self.partition = -1
        self._watermark = float("-inf")
        self._reading: float | None = None  # while a batch's events are read: its wall time (see watermark)
        self._since = float("-inf")  # while timers fire: the watermark the batch's events were judged by
        self._out: list[Alert] = []
        self._forwarded: list[tuple[int, CohortRecord]] = []
        self.kind = ""  # the stream of the event being read (a forwarded record is numbered within it)
        exchange = self.config.exchange and not self.config.driven_by_marks
        self.exchange_out = ExchangeOut(backend, self.config.partitions, prefix) if exchange else None
        self.exchange_in = ExchangeIn(backend, prefix + "cohort") if exchange else None
        self._exchange: list[tuple[int, Forwarded | PartitionMark]] = []
        self._scores: list[Score] = []
        self.cohort: Engine | None = None
        self.set_rules(rules)

    # -- rules ------------------------------------------------------------
    def set_rules(self, rules: Sequence[Rule]) -> None:
        """Install a rule set (state of rules kept by id survives).

        Rules are indexed by event type, and a rule with a ``guard`` (a field and the
        values it requires, see :mod:`rules.guards`) also by that field's value, so an
        event meets only the rules that can match it.
        """
        before = {rule.rule_id: rule for rule in getattr(self, "rules", ())}
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
        self.guarded = {
            t: tuple((field, {v: tuple(rs) for v, rs in by_value.items()}) for field, by_value in fields.items())
            for t, fields in guarded.items()
        }
        self.lifecycle = OneOffAlerts.of(self.rules)  # closes one-off alerts: indexed like a rule, on its closing events
        for event_type in self.lifecycle.event_types:
            plain.setdefault(event_type, []).append(self.lifecycle)  # type: ignore[arg-type]
        self.index = {k: tuple(v) for k, v in plain.items()}
        self.timer_handlers = {rule.rule_id: rule.on_timer for rule in self.rules}
        self.holders = tuple(rule for rule in self.rules if isinstance(rule, HoldsBatch))
        keepers = [rule for rule in self.rules if isinstance(rule, KeepsTimers)]
        self.timers.own({rule.rule_id: functools.partial(rule.stored_timers, self) for rule in keepers})
        for rule in keepers:  # a new version may time its keys otherwise: index what its state now says
            if before.get(rule.rule_id, rule) is not rule:
                self.timers.reindex(rule.rule_id)
        self.timer_handlers[OneOffAlerts.rule_id] = self.lifecycle.on_timer
        self.timer_handlers[Deduplicator.OWNER] = self.dedup.on_timer
        self.timer_handlers[AlertManager.OWNER] = self.alerting.on_timer
        cohort_rules = [_CohortSide(rule) for rule in self.rules if getattr(rule, "cohort", False)]
        if cohort_rules and self.cohort is None:
            config = replace(
                self.config,
                allowed_lateness=0.0,  # the partitions' watermarks already allow for it
                idle_after=None,  # and already advance when idle
                # across workers, a group partition hears from every input partition before its time moves
                streams=tuple(_stream_name(p) for p in range(self.config.partitions)) if self.exchange_out else (),
                state_prefix=self.config.state_prefix + "cohort",
                driven_by_marks=True,
            )
            self.cohort = Engine(cohort_rules, self.backend, config, clock=self.clock, observer=self.observer, alerting=self.alerting)
        elif self.cohort is not None:
            self.cohort.set_rules(cohort_rules)

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
    @property
    def watermark(self) -> float:
        """The current partition's watermark as a rule sees it: while a batch's events are read, as it stands
        after the event at hand (asked for only by the rules that need it); in a timer, its fire time."""
        if self._reading is not None:
            return self.watermarks.current(self.partition, self._reading)
        return self._watermark

    @watermark.setter
    def watermark(self, mark: float) -> None:
        self._watermark = mark

    def state(self, name: str, value_type: type[V], packed: bool = False) -> KeyedState[V]:
        return self.backend.namespace(name, value_type, packed)

    def set_timer(self, owner: str, key: str, fire_at: float) -> None:
        self.timers.set(self.partition, owner, key, fire_at)

    def cancel_timer(self, owner: str, key: str) -> None:
        self.timers.cancel(owner, key)

    def next_due(self) -> tuple[float, str]:
        """While a timer fires: where the partition's next due timer stands (see :meth:`Timers.next_due`)."""
        return self.timers.next_due(self.partition)

    def release_at(self, ts: float) -> None:
        """While a timer fires and its owner hands out several due items: the watermark the next one sees, its
        own time (never below the watermark the batch's events were judged by), as a timer of its own would."""
        self.watermark = ts if ts > self._since else self._since

    def emit(self, alert: Alert) -> None:
        if self.dedup.admit(alert, self):
            self._out.append(alert)
            self.alerting.admit(alert, self)
            self.lifecycle.track(alert, self)

    def take_dispatch(self) -> Dispatch:
        """What the alert manager did with the alerts since the last call (sent or held, and closed groups)."""
        return self.alerting.take()

    def forward(self, record: CohortRecord) -> None:
        """A cohort rule's record for the cohort stage (placed by its group, tagged with this partition)."""
        record = msgspec.structs.replace(record, stream=_stream_name(self.partition))
        q = partition_for(record.event_type + record.key, self.config.partitions)  # cached per group
        if self.exchange_out is not None:
            self._exchange.append(self.exchange_out.forward(self.partition, self.kind, q, record))
        else:
            self._forwarded.append((q, record))

    def score(self, scores: Sequence[Score]) -> None:
        self._scores.extend(scores)

    def scores_pending(self) -> bool:
        return bool(self._scores) or (self.cohort is not None and self.cohort.scores_pending())

    def take_scores(self) -> list[Score]:
        """The detector scores reported since the last call (this stage's and the cohort stage's)."""
        out, self._scores = self._scores, []
        if self.cohort is not None:
            out.extend(self.cohort.take_scores())
        return out

    def _run_cohort(self, out: list[Alert]) -> None:
        """Hand the forwarded records to the cohort stage, then the partitions' watermarks; collect its alerts.

        Records first: a record's time is at or after its partition's watermark when it was
        forwarded, but the batch may have moved that watermark on since.
        """
        cohort = self.cohort
        if cohort is None:
            return
        if self.exchange_out is not None:
            self._send_marks()
            return
        forwarded, self._forwarded = self._forwarded, []
        if forwarded:
            out.extend(cohort.process(forwarded))
        wall = self.clock()
        if self.watermarks.waiting(wall):
            return  # an expected partition not read yet: its events may still be in any open window
        marks = {p: self.watermarks.current(p, wall) for p in self.watermarks.partitions()}
        out.extend(cohort.advance_marks(dict.fromkeys(range(self.config.partitions), marks)))

    def _send_marks(self) -> None:
        """Across workers: this runner's partitions' marks to every group partition; an expected partition
        never seen and silent for ``idle_after`` as :data:`~.exchange.IDLE`, so it holds no group's time."""
        wall = self.clock()
        watermarks = self.watermarks
        marks = {p: watermarks.current(p, wall) for p in watermarks.partitions()}
        for p in watermarks.given_up(wall):
            marks[p] = IDLE
        self._exchange += self.exchange_out.marks(marks)  # type: ignore[union-attr]

    def take_exchange(self) -> list[tuple[int, CohortMessage]]:
        """Across workers: the messages for the group partitions (``(q, message)``) since the last call, in the
        order they must reach each ``q``; the runner sends them before it commits the batch."""
        out, self._exchange = self._exchange, []
        return pack(out)

    def accept(self, messages: Iterable[tuple[int, CohortMessage]]) -> list[Alert]:
        """Across workers: messages of the group partitions this runner owns (each ``q``'s in their order);
        returns the cohort stage's alerts. A record delivered again is counted once."""
        if self.cohort is None or self.exchange_in is None:
            return []
        records, marks = split(messages, self.exchange_in.admit)
        out = self.cohort.process(records) if records else []
        if marks:
            out += self.cohort.advance_marks(marks)
        return out

    def expect_partitions(self, partitions: Iterable[int]) -> None:
        """The input partitions this runner reads. Until each has been seen (or silent for ``idle_after``)
        the cohort stage's time stands still, so a partition read after the others, as a worker
        catching up does, does not find its windows closed."""
        self.watermarks.expect(partitions, self.clock())

    def advance_marks(self, marks: dict[int, dict[int, float]]) -> list[Alert]:
        """Cohort stage: ``{group partition: {input partition: mark}}``; each group partition's watermark becomes
        the minimum of the marks of the input partitions it has heard from."""
        out = self._out = []
        self.partition = -1  # others (the outbox, silences) may have moved the backend's partition since
        wall = self.clock()
        watermarks = self.watermarks
        for q, by_input in marks.items():
            for p, mark in by_input.items():
                watermarks.observe(q, _stream_name(p), mark, wall)
            self._fire_due(q, watermarks.current(q, wall))
        return out

    # -- processing -------------------------------------------------------
    def process(self, batch: Iterable[tuple[int, Event]]) -> list[Alert]:
        """Process a batch; returns the alerts it raised (deduplicated).

        An event is late, and rules see the watermark, as the partition's watermark stands at that event;
        the timers it makes due fire once the batch's events are in, in bulk, each seeing the watermark at
        its own fire time (see :meth:`_fire_due`).
        """
        out = self._out = []
        self.partition = -1  # others (the outbox, silences) may have moved the backend's partition since
        wall = self.clock()
        late: Counter[str] = Counter()
        watermarks, index, drop_late = self.watermarks, self.index, self.config.late_policy == "drop"
        guarded, rules_for = bool(self.guarded), self.rules_for
        observe = None if self.config.driven_by_marks else watermarks.observe
        now, use_partition, kinds = watermarks.current, self.backend.use_partition, _KIND
        started: dict[int, float] = {}  # each partition's watermark at the batch's start
        current = -1
        self._reading = wall
        try:
            for partition, event in batch:
                if partition != current:
                    current = self.partition = partition
                    use_partition(partition)
                    if partition not in started:
                        started[partition] = now(partition, wall)
                ts = event.ts.timestamp()
                kind = self.kind = kinds.get(type(event)) or event.stream  # type: ignore[union-attr]  # cohort records name theirs
                if ts < now(partition, wall):
                    late[kind] += 1
                    if drop_late:
                        continue
                if observe is not None:
                    observe(partition, kind, ts, wall)
                for rule in rules_for(event) if guarded else index.get(event.event_type, ()):
                    try:
                        rule.on_event(event, ts, self)
                    except Exception:
                        log.exception("rule %s failed on event %s", rule.rule_id, event.event_id)
                        self.observer.rule_error(rule.rule_id)
        finally:
            self._reading = None
        for kind, count in late.items():
            self.observer.late_events(kind, count)
        for partition, since in started.items():
            self._fire_due(partition, now(partition, wall), since)
        self._run_cohort(out)
        return out

    def _end_batch(self) -> None:
        """The rules that held the batch's events of the current partition store what is still held (after its
        due timers: the batch's watermark has passed most of them)."""
        for rule in self.holders:
            try:
                rule.end_batch(self)
            except Exception:
                log.exception("rule %s failed to store what it held", rule.rule_id)
                self.observer.rule_error(rule.rule_id)

    def tick(self) -> list[Alert]:
        """Advance idle partitions' watermarks with wall-clock time and fire due timers."""
        out = self._out = []
        self.partition = -1  # others (the outbox, silences) may have moved the backend's partition since
        wall = self.clock()
        for partition in self.watermarks.partitions():
            self._fire_due(partition, self.watermarks.current(partition, wall))
        self._run_cohort(out)
        return out

    def close_input(self, until: float = float("-inf")) -> list[Alert]:
        """End of a finite input (backtest): fire every timer up to the last event time (or ``until``, if later)."""
        out = self._out = []
        self.partition = -1  # others (the outbox, silences) may have moved the backend's partition since
        for partition in self.watermarks.partitions():
            self._fire_due(partition, self.watermarks.close_input(partition, until))
        self._run_cohort(out)
        if self.cohort is not None and self.exchange_out is None:  # every partition's input is in: the cohort stage may close too
            out.extend(self.cohort.close_input(until))
        return out

    def close_cohort(self, until: float = float("-inf")) -> list[Alert]:
        """Across workers, at the end of a finite input: once every input partition's last messages are
        accepted, close the group partitions this runner owns."""
        return self.cohort.close_input(until) if self.cohort is not None else []

    def set_backlog(self, behind: Iterable[tuple[int, str]]) -> None:
        """``(partition, stream kind)`` pairs with records the runner has not read yet: their silence is not
        idleness, so idle advance never moves a watermark past events still waiting (see :mod:`.watermark`)."""
        self.watermarks.set_backlog(behind)

    def set_idle_advance(self, idle_after: float | None) -> None:
        """Turn idle advance on (seconds of silence) or off (``None``), e.g. off while replaying history.

        Idle time counts from now for every partition, so switching it on never jumps a watermark.
        """
        self.watermarks.set_idle_after(idle_after, self.clock())

    def commit(self) -> None:
        """Persist clocks and flush state writes; call after the batch's alerts are in the sinks."""
        if self.exchange_out is not None and self.exchange_in is not None:
            self.exchange_out.save()
            self.exchange_in.save()
        if self.cohort is not None:
            self.cohort.watermarks.save(self.backend.use_partition)
            self.cohort.partition = -1
        self.watermarks.save(self.backend.use_partition)
        self.partition = -1  # the backend's partition moved; set it again before the next write
        self.backend.flush()

    def recover(self) -> int:
        """Reload watermarks and timers from state after a restart; returns the timer count."""
        self.watermarks.restore(self.clock())
        self.alerting.recover()
        timers = self.timers.rebuild()
        for rule in self.rules:
            if isinstance(rule, CachesState):
                rule.forget_cached()
        if self.exchange_out is not None and self.exchange_in is not None:
            self.exchange_out.forget()
            self.exchange_in.forget()
        if self.cohort is not None:
            timers += self.cohort.recover()
        return timers

    def _fire_due(self, partition: int, mark: float, since: float = float("-inf")) -> None:
        """Fire the partition's timers due by ``mark``, earliest first.

        Each handler sees the watermark as it stood when its timer came due (its fire time, never
        below ``since``, the watermark its partition's events were judged by): a batch that moved
        event time on by hours fires its timers in bulk, yet each decides at its own time.
        """
        if partition != self.partition:
            self.partition = partition
            self.backend.use_partition(partition)
        self.watermark = mark
        self._since = since
        for owner, key, fire_at in self.timers.pop_due(partition, mark):
            handler = self.timer_handlers.get(owner)
            if handler is None:
                continue
            self.watermark = fire_at if fire_at > since else since
            try:
                handler(key, fire_at, self)
            except Exception:
                log.exception("timer of %s failed for key %s", owner, key)
                self.observer.rule_error(owner)
        self.watermark = mark
        if self.holders:
            self._end_batch()
