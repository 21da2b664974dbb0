"""The small protocols the engine and its plug-ins (rules, detectors, sinks) share.

A rule keeps no data in attributes: everything it remembers goes through a
:class:`KeyedState` it gets from the :class:`RuleContext`, so the same rule
object works over plain dicts (local runner) and faust Tables (worker), and
recovers after a restart.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Protocol, TypeVar, runtime_checkable

from yujing.alerts import Alert
from yujing.cohort import CohortRecord
from yujing.events import Event
from yujing.scores import Score

__all__ = ["CachesState", "HoldsBatch", "KeepsTimers", "KeyedState", "Rule", "RuleContext", "Sink", "StateBackend"]

V = TypeVar("V")


class KeyedState(Protocol[V]):
    """A namespace of keyed values (one rule's watches, the timers, …)."""

    def get(self, key: str) -> V | None: ...

    def set(self, key: str, value: V) -> None: ...

    def delete(self, key: str) -> None: ...

    def items(self) -> Iterator[tuple[str, V]]: ...


class StateBackend(Protocol):
    """Where keyed state lives: dicts locally, faust Tables in the worker."""

    def namespace(self, name: str, value_type: type[V], packed: bool = False) -> KeyedState[V]:
        """The namespace ``name``; ``packed`` asks a backend that holds objects to hold each value as its
        msgpack bytes instead (a quarter of the memory, a decode per read), for namespaces of millions of
        small values; the value type must then be a msgspec type, and a value read is a copy."""
        ...

    def use_partition(self, partition: int) -> None:
        """Writes that follow belong to this input partition (changelog routing)."""
        ...

    def flush(self) -> None:
        """Make the writes so far durable (one batch, not one write per event)."""
        ...


class RuleContext(Protocol):
    """What a rule may do while it handles an event or a timer."""

    @property
    def partition(self) -> int: ...

    @property
    def watermark(self) -> float: ...

    def state(self, name: str, value_type: type[V], packed: bool = False) -> KeyedState[V]: ...

    def set_timer(self, owner: str, key: str, fire_at: float) -> None: ...

    def cancel_timer(self, owner: str, key: str) -> None: ...

    def next_due(self) -> tuple[float, str]:
        """While a timer fires: ``(fire_at, owner + SEP + key)`` of the partition's next due timer, or the round's
        watermark and a key that sorts last (a rule handing out several due items from one timer stops there)."""
        ...

    def release_at(self, ts: float) -> None:
        """While a timer fires: the watermark the next item a rule hands out from it sees (its own time)."""
        ...

    def emit(self, alert: Alert) -> None: ...

    def forward(self, record: CohortRecord) -> None:
        """Hand a cohort rule's record to the engine's cohort stage."""
        ...

    def score(self, scores: Sequence[Score]) -> None:
        """Report a detector's scores of one judged window (telemetry: the top few subjects)."""
        ...


@runtime_checkable
class Rule(Protocol):
    """One compiled rule. ``event_types`` lets the engine dispatch by type."""

    rule_id: str
    version: str
    event_types: frozenset[str]

    def on_event(self, event: Event, ts: float, ctx: RuleContext) -> None: ...

    def on_timer(self, key: str, fire_at: float, ctx: RuleContext) -> None: ...


@runtime_checkable
class KeepsTimers(Protocol):
    """A rule whose own state already says when each of its keys is due, so the engine keeps no timer records
    for it (an SLA watch knows its deadline): a million open watches then cost one record each, not three.

    Its ``cancel_timer`` calls do nothing and a moved timer's earlier entry still comes up, so ``on_timer``
    must ignore a ``fire_at`` its state no longer expects. After a restart the engine asks it for its pending
    timers: ``(key, partition, fire_at)`` of each, from its state.
    """

    rule_id: str

    def stored_timers(self, ctx: RuleContext) -> Iterator[tuple[str, int, float]]: ...


@runtime_checkable
class CachesState(Protocol):
    """A rule that keeps a view of its state in memory, read from the state on first use and kept by its own
    writes (hot words' open windows, a cohort rule's count keys by step). When state may have changed behind it
    (a recovery after a rebalance) the engine tells it to read the state again."""

    def forget_cached(self) -> None: ...


@runtime_checkable
class HoldsBatch(Protocol):
    """A rule that holds in memory what a batch gives it while the batch's timers fire, and stores only what is
    still held then (an in-order rule's events: the batch's own watermark passes most of them, so they are
    handed over without a round trip through state). The engine calls :meth:`end_batch` once per partition of
    each batch, after that partition's due timers, with the context set to the partition; what is still held
    then goes to state, so what the runner commits after a batch is whole (what a rule keeps in memory beyond
    that is a cache of its state: :class:`CachesState`)."""

    rule_id: str

    def end_batch(self, ctx: RuleContext) -> None: ...


class Sink(Protocol):
    """Where alerts go. ``write`` takes a batch; ``close`` flushes what is left."""

    name: str

    def write(self, alerts: Sequence[Alert]) -> None: ...

    def close(self) -> None: ...
