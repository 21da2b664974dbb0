"""Handing a key's events to a rule in event-time order, once the watermark has passed them.

Rules that compare an event with what came *before* it for the same key
(``compare``, ``change``) must not depend on arrival order: events of one key
may arrive out of order by up to the allowed lateness. Such a rule buffers
each event here (per key, bounded) until the watermark passes it; then
:meth:`OrderedBuffer.release` hands the due events over in event-time order.
Events of the same instant come in the order of their keys, then of their
streams (an order before its bill, a bill before a complaint about it), then
by ``event_id``, so a first bill issued the second its order was created is
compared with that order whatever their ids. An event that arrives already
behind the watermark (late) is handed over at once. A redelivered event (same
id) is handed over once.

One timer per partition, not one per key: a partition's waiting events form
a heap in release order, its timer stands at the earliest, and when it fires
it hands out every due event that sorts before the partition's next due timer
of any owner (:meth:`yujing.protocols.RuleContext.next_due`), each seeing the
watermark at its own time. That is the order a timer per key gave, at the cost
of a heap push and pop an event instead of a timer set, indexed, fired and
looked up.

The waiting events stay in memory between batches (a cache of the state,
read from it on first use and after a recovery); each batch writes a key's
waiting events to state once, as their JSON, if they changed and the
watermark has not passed them all (:meth:`OrderedBuffer.end_batch`, see
:class:`yujing.protocols.HoldsBatch`): most events are handed over in the
batch that brought them and never stored.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable, Iterator
from typing import Any

import msgspec

from yujing.events import TOPIC_KINDS, Event
from yujing.protocols import KeyedState, RuleContext
from yujing.timer_keys import LAST, SEP

__all__ = ["FORGET", "InOrderRule", "OrderedBuffer", "Pending"]

# JSON, not msgpack: it keeps each timestamp's own UTC offset (msgpack turns them into UTC).
_ENCODE = msgspec.json.Encoder().encode
_DECODERS = {kind: msgspec.json.Decoder(struct) for kind, struct in TOPIC_KINDS.items()}
_KIND_OF = {struct: kind for kind, struct in TOPIC_KINDS.items()}
_TIMER = "\x1eordered"
#: The key of a partition's release timer: after every key of the rule at the same time (see ``release``).
_RELEASE = LAST + _TIMER
#: Events of one instant: orders first, then bills, then complaints (what a later stream's event is about comes first).
_STREAM_RANK = {"orders": 0, "billing": 1, "complaints": 2}
_RANK_OF = {struct: _STREAM_RANK[kind] for struct, kind in _KIND_OF.items()}


class Pending(msgspec.Struct, array_like=True):
    """One buffered event, as stored."""

    ts: float
    event_id: str
    kind: str
    raw: bytes


class PendingList(msgspec.Struct, array_like=True):
    items: list[Pending] = []
    partition: int = -1  # the input partition whose timer the first item's time is (-1: from a version with timer records)


#: A waiting event in release order: ``[ts, key, stream rank, event_id, sequence, the event or its stored form]``
#: (a list: its payload becomes the stored form once stored; the sequence keeps two entries of one event apart).
Item = list[Any]
_SEQUENCE = itertools.count()


def _from_stored(key: str, p: Pending) -> Item:
    return [p.ts, key, _STREAM_RANK.get(p.kind, 3), p.event_id, next(_SEQUENCE), p]


def _stored(item: Item) -> Pending:
    payload = item[5]
    if not isinstance(payload, Pending):
        payload = item[5] = Pending(item[0], item[3], _KIND_OF.get(type(payload), ""), _ENCODE(payload))
    return payload


def _event(payload: Event | Pending) -> Event | None:
    if not isinstance(payload, Pending):
        return payload
    decoder = _DECODERS.get(payload.kind)
    return decoder.decode(payload.raw) if decoder is not None else None


def _order(item: Item) -> tuple[float, int, str]:
    return item[0], item[2], item[3]


class _Waiting:
    """One partition's waiting events: a heap in release order, each key's in order, and what state must learn."""

    __slots__ = ("armed", "by_key", "dirty", "heap", "stored")

    def __init__(self) -> None:
        self.heap: list[Item] = []
        self.by_key: dict[str, list[Item]] = {}
        self.dirty: set[str] = set()  # keys whose waiting events changed since they were last stored
        self.stored: set[str] = set()  # keys with a stored list
        self.armed = float("inf")  # the earliest release timer set and not yet fired


class OrderedBuffer:
    """A partition's events waiting for the watermark, per key (one buffer per rule).

    >>> from streams.engine import DictBackend, Engine, EngineConfig
    >>> engine = Engine([], DictBackend(), EngineConfig(idle_after=None))
    >>> buffer = OrderedBuffer("rule", "pending")
    >>> engine.partition = 0
    >>> class E: event_id = "e-1"
    >>> buffer.add("c-1", E(), 100.0, engine)  # ahead of the watermark: it waits
    True
    >>> engine.watermark = 200.0
    >>> buffer.add("c-1", E(), 100.0, engine)  # behind it: the rule handles it now
    False
    """

    def __init__(self, rule_id: str, namespace: str, max_pending: int = 64) -> None:
        self.rule_id = rule_id
        self.namespace = namespace
        self.max_pending = max_pending
        self._prefix = rule_id + SEP
        self.forget_held()

    @staticmethod
    def timer_key(key: str) -> str:
        return key + _TIMER

    @staticmethod
    def key_of_timer(timer_key: str) -> str | None:
        """The key a timer of this buffer belongs to (``LAST`` for a partition's), or ``None`` for another timer of
        the rule."""
        return timer_key[: -len(_TIMER)] if timer_key.endswith(_TIMER) else None

    def _store(self, ctx: RuleContext) -> KeyedState[PendingList]:
        return ctx.state(self.namespace, PendingList)

    def _load(self, ctx: RuleContext) -> dict[int, _Waiting]:
        """Every partition's waiting events, read from state (an earlier version's, with no partition, are
        adopted by the partition whose timer or event next names their key)."""
        waiting: dict[int, _Waiting] = {}
        for key, pending in self._store(ctx).items():
            if pending.partition < 0:
                self.legacy.add(key)
                continue
            w = waiting.get(pending.partition)
            if w is None:
                w = waiting[pending.partition] = _Waiting()
            items = w.by_key[key] = [_from_stored(key, p) for p in pending.items]
            w.heap.extend(items)
            w.stored.add(key)
        for w in waiting.values():
            heapq.heapify(w.heap)
        self.waiting = waiting
        return waiting

    def _partition(self, ctx: RuleContext) -> _Waiting:
        waiting = self.waiting if self.waiting is not None else self._load(ctx)
        w = waiting.get(ctx.partition)
        if w is None:
            w = waiting[ctx.partition] = _Waiting()
        return w

    def _adopt(self, key: str, w: _Waiting, ctx: RuleContext) -> None:
        """A key an earlier version stored with no partition joins this one's waiting events."""
        self.legacy.discard(key)
        pending = self._store(ctx).get(key)
        if pending is None:
            return
        have = {item[3] for item in w.by_key.get(key, ())}
        new = [_from_stored(key, p) for p in pending.items if p.event_id not in have]
        items = w.by_key[key] = sorted([*w.by_key.get(key, ()), *new], key=_order)
        for item in new:
            heapq.heappush(w.heap, item)
        w.stored.add(key)
        w.dirty.add(key)  # stored again with its partition
        self._arm(w, items[0][0], ctx)

    def _arm(self, w: _Waiting, at: float, ctx: RuleContext) -> None:
        if at < w.armed:
            w.armed = at
            ctx.set_timer(self.rule_id, _RELEASE, at)

    def add(self, key: str, event: Event, ts: float, ctx: RuleContext) -> bool:
        """Hold ``event`` until the watermark passes it; ``False`` when it already has (handle it now)."""
        if ts < ctx.watermark:
            return False
        w = self._partition(ctx)
        if self.legacy and key in self.legacy:
            self._adopt(key, w, ctx)
        event_id = event.event_id
        item = [ts, key, _RANK_OF.get(type(event), 3), event_id, next(_SEQUENCE), event]
        items = w.by_key.get(key)
        if items is None:  # most keys wait for one event at a time
            w.by_key[key] = [item]
        else:
            if any(i[3] == event_id for i in items):
                return True  # a redelivery: waiting already
            items.append(item)
            if _order(item) < _order(items[-2]):
                items.sort(key=_order)
        w.dirty.add(key)
        heapq.heappush(w.heap, item)
        self._arm(w, ts, ctx)
        return True

    def release(self, ctx: RuleContext, handle: Callable[[str, Event, float], None], fired: str, fire_at: float) -> None:
        """A timer of the buffer fired (``fired``, its key): hand each due event to ``handle`` in release order, up
        to the partition's next due timer of any owner (a timer per key would have fired in this order, the key's
        timer being ``rule_id + SEP + key + _TIMER``), then set the partition's timer again at the earliest event
        still waiting, unless the one set last is still to come (a timer a restart or a moved event left fires in
        vain, and must not leave another behind, or they pile up, each set again at every later event).

        A key's own timer (after a recovery, or an earlier version's record) first brings in that key's events if
        an earlier version stored them with no partition."""
        w = self._partition(ctx)
        if fired == _RELEASE:
            if fire_at == w.armed:
                w.armed = float("inf")  # the partition's timer, now fired
        elif self.legacy:
            base = self.key_of_timer(fired)
            if base is not None and base in self.legacy:
                self._adopt(base, w, ctx)
        heap, by_key, stored, dirty, prefix = w.heap, w.by_key, w.stored, w.dirty, self._prefix
        bound_at, bound_key = ctx.next_due()
        while heap:
            item = heap[0]
            ts = item[0]
            if ts > bound_at or (ts == bound_at and prefix + item[1] + _TIMER >= bound_key):
                break
            heapq.heappop(heap)
            key = item[1]
            items = by_key.get(key)
            if not items or items[0] is not item:
                continue  # dropped: the key kept its newest max_pending
            del items[0]
            if not items:
                del by_key[key]
            if key in stored:
                dirty.add(key)
            event = _event(item[5])
            if event is None:
                continue
            ctx.release_at(ts)
            handle(key, event, ts)
            bound_at, bound_key = ctx.next_due()  # what it handled may have set timers that are due already
        if heap:
            self._arm(w, heap[0][0], ctx)

    def end_batch(self, ctx: RuleContext) -> None:
        """Store the waiting events of the keys this batch changed in the partition (each key once)."""
        waiting = self.waiting
        w = waiting.get(ctx.partition) if waiting is not None else None
        if w is None or not w.dirty:
            return
        store = self._store(ctx)
        partition, keep = ctx.partition, self.max_pending
        for key in w.dirty:
            items = w.by_key.get(key)
            if items:
                if len(items) > keep:
                    del items[: len(items) - keep]  # their heap entries are skipped when they come up
                store.set(key, PendingList([_stored(item) for item in items], partition))
                w.stored.add(key)
            elif key in w.stored:
                store.delete(key)
                w.stored.discard(key)
        w.dirty.clear()

    def forget_held(self) -> None:
        """State may have changed behind the buffer (a recovery): read the waiting events from it again."""
        self.waiting: dict[int, _Waiting] | None = None
        self.legacy: set[str] = set()  # stored keys with no partition, from an earlier version

    def stored_timers(self, ctx: RuleContext) -> Iterator[tuple[str, int, float]]:
        """Each stored key's timer, at its earliest event's time (see :class:`yujing.protocols.KeepsTimers`)."""
        for key, pending in self._store(ctx).items():
            if pending.items and pending.partition >= 0:  # one stored by an earlier version has a record
                yield self.timer_key(key), pending.partition, pending.items[0].ts


#: Suffix of the timer that forgets a key's memory ``keep_for`` after its last event.
FORGET = "\x1eforget"


class InOrderRule:
    """What rules that compare an event with earlier ones of its key share.

    Events are buffered until the watermark passes them and handed to
    :meth:`handle` in event-time order (late ones at once); a key's memory (a
    struct with a ``ts`` and a ``partition``, in ``namespace``, stored by
    :meth:`remember`) is dropped ``keep_for`` after its last event. A subclass
    sets ``get_key``, ``namespace``, ``memory_type``, ``keep_for`` and
    ``buffer``, and may narrow :meth:`accepts`.

    Its timers are kept in that state, not as timer records
    (:class:`yujing.protocols.KeepsTimers`): a partition's waiting events are
    due at the earliest (after a restart, each stored key at its own), a memory
    at ``ts + keep_for``; an entry those no longer give releases nothing and
    forgets nothing when it comes up.
    """

    rule_id: str
    namespace: str
    memory_type: type[Any]
    keep_for: float
    buffer: OrderedBuffer
    get_key: Any

    def accepts(self, event: Event) -> bool:
        return True

    def handle(self, key: str, event: Event, ts: float, ctx: RuleContext) -> None:
        raise NotImplementedError

    def remember(self, key: str, memory: Any, ts: float, ctx: RuleContext) -> None:
        """Store ``key``'s ``memory`` of its event at ``ts`` and (re)arm the timer that forgets it unless the key
        sees an event after ``ts``."""
        memory.partition = ctx.partition
        ctx.state(self.namespace, self.memory_type).set(key, memory)
        ctx.set_timer(self.rule_id, key + FORGET, ts + self.keep_for)

    def stored_timers(self, ctx: RuleContext) -> Iterator[tuple[str, int, float]]:
        """The buffered keys' timers and each memory's forgetting (see :class:`yujing.protocols.KeepsTimers`)."""
        yield from self.buffer.stored_timers(ctx)
        for key, memory in ctx.state(self.namespace, self.memory_type).items():
            if memory.ts is not None and memory.partition >= 0:  # one stored by an earlier version has a record
                yield key + FORGET, memory.partition, memory.ts + self.keep_for

    def on_event(self, event: Event, ts: float, ctx: RuleContext) -> None:
        if not self.accepts(event):
            return
        key = self.get_key(event)
        if key is not None and not self.buffer.add(key, event, ts, ctx):
            self.handle(key, event, ts, ctx)  # late: now, in arrival order

    def on_timer(self, key: str, fire_at: float, ctx: RuleContext) -> None:
        if key.endswith(FORGET):
            base = key[: -len(FORGET)]
            store = ctx.state(self.namespace, self.memory_type)
            memory = store.get(base)
            if memory is not None and memory.ts is not None and memory.ts + self.keep_for <= fire_at:
                store.delete(base)
            return
        if self.buffer.key_of_timer(key) is not None:
            self.buffer.release(ctx, lambda k, event, ts: self.handle(k, event, ts, ctx), key, fire_at)

    def end_batch(self, ctx: RuleContext) -> None:
        """Store the waiting events the batch changed (:class:`yujing.protocols.HoldsBatch`)."""
        self.buffer.end_batch(ctx)

    def forget_cached(self) -> None:
        """After a recovery: what an unfinished batch held is read again (:class:`yujing.protocols.CachesState`)."""
        self.buffer.forget_held()
