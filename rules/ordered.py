"""Handing a key's events to a rule in event-time order, once the watermark has passed them.

Rules that compare an event with what came *before* it for the same key
(``compare``, ``change``) must not depend on arrival order: events of one key
may arrive out of order by up to the allowed lateness. Such a rule buffers
each event here (per key, bounded) with a timer at its event time; when the
watermark passes, :meth:`OrderedBuffer.release` gives the due events sorted by
event time; events of the same instant come in the order of their streams (an
order before its bill, a bill before a complaint about it), then by
``event_id``, so a first bill issued the second its order was created is
compared with that order whatever their ids. An event that arrives already
behind the watermark (late) is handed over at once. A redelivered event (same
id) is handed over once.

A batch's events are held in memory while the batch's timers fire (the
batch's own watermark passes most of them); only those still ahead of it are
stored, as their JSON, at the batch's end (:meth:`OrderedBuffer.end_batch`,
see :class:`yujing.protocols.HoldsBatch`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import msgspec

from yujing.events import TOPIC_KINDS, Event
from yujing.protocols import KeyedState, RuleContext

__all__ = ["FORGET", "InOrderRule", "OrderedBuffer", "Pending"]

# JSON, not msgpack: it keeps each timestamp's own UTC offset (msgpack turns them into UTC).
_ENCODE = msgspec.json.Encoder().encode
_DECODERS = {kind: msgspec.json.Decoder(struct) for kind, struct in TOPIC_KINDS.items()}
_KIND_OF = {struct: kind for kind, struct in TOPIC_KINDS.items()}
_TIMER = "\x1eordered"
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


#: A buffered event in release order: ``(ts, stream rank, event_id, the event or its stored form)``.
Item = tuple[float, int, str, "Event | Pending"]


def _item(p: Pending) -> Item:
    return p.ts, _STREAM_RANK.get(p.kind, 3), p.event_id, p


def _stored(item: Item) -> Pending:
    ts, _, event_id, payload = item
    if isinstance(payload, Pending):
        return payload
    return Pending(ts, event_id, _KIND_OF.get(type(payload), ""), _ENCODE(payload))


def _event(payload: Event | Pending) -> Event | None:
    if not isinstance(payload, Pending):
        return payload
    decoder = _DECODERS.get(payload.kind)
    return decoder.decode(payload.raw) if decoder is not None else None


class OrderedBuffer:
    """A per-key buffer of events waiting for the watermark (one per rule)."""

    def __init__(self, rule_id: str, namespace: str, max_pending: int = 64) -> None:
        self.rule_id = rule_id
        self.namespace = namespace
        self.max_pending = max_pending
        #: What the batch under way gave, per partition and key, in release order (nothing between batches).
        self.held: dict[int, dict[str, list[Item]]] = {}

    @staticmethod
    def timer_key(key: str) -> str:
        return key + _TIMER

    @staticmethod
    def key_of_timer(timer_key: str) -> str | None:
        """The key a timer of this buffer belongs to, or ``None`` for another timer of the rule."""
        return timer_key[: -len(_TIMER)] if timer_key.endswith(_TIMER) else None

    def _store(self, ctx: RuleContext) -> KeyedState[PendingList]:
        return ctx.state(self.namespace, PendingList)

    def add(self, key: str, event: Event, ts: float, ctx: RuleContext) -> bool:
        """Hold ``event`` until the watermark passes it; ``False`` when it already has (handle it now)."""
        if ts < ctx.watermark:
            return False
        partition = ctx.partition
        by_key = self.held.get(partition)
        if by_key is None:
            by_key = self.held[partition] = {}
        item = (ts, _RANK_OF.get(type(event), 3), event.event_id, event)
        held = by_key.get(key)
        if held is None:  # most keys wait for one event at a time
            by_key[key] = [item]
            ctx.set_timer(self.rule_id, self.timer_key(key), ts)
            return True
        if any(h[2] == item[2] for h in held):
            return True  # a redelivery: held already
        held.append(item)
        if item[:3] < held[0][:3]:  # the key's timer stands at its earliest event's time
            ctx.set_timer(self.rule_id, self.timer_key(key), ts)
        held.sort(key=_order)
        return True

    def _merged(self, pending: PendingList | None, held: list[Item] | None) -> list[Item]:
        """A key's stored and held events in release order, each once, the newest ``max_pending``."""
        items = [_item(p) for p in pending.items] if pending is not None else []
        if held:
            ids = {item[2] for item in items}
            items += [h for h in held if h[2] not in ids]
            items.sort(key=_order)
        del items[: max(0, len(items) - self.max_pending)]
        return items

    @staticmethod
    def _keep(store: KeyedState[PendingList], key: str, items: list[Item], ctx: RuleContext) -> None:
        """Store a key's events still waiting (their timer stands at the first one's time)."""
        store.set(key, PendingList([_stored(item) for item in items], ctx.partition))

    def end_batch(self, ctx: RuleContext) -> None:
        """Store what the batch under way gave this partition and is still held (its timers are set)."""
        by_key = self.held.pop(ctx.partition, None)
        if not by_key:
            return
        store = self._store(ctx)
        for key, held in by_key.items():
            self._keep(store, key, self._merged(store.get(key), held), ctx)

    def forget_held(self) -> None:
        """Drop what a batch that did not finish held (its records are read again)."""
        self.held.clear()

    def stored_timers(self, ctx: RuleContext) -> Iterator[tuple[str, int, float]]:
        """Each buffered key's timer, at its earliest event's time (see :class:`yujing.protocols.KeepsTimers`)."""
        for key, pending in self._store(ctx).items():
            if pending.items and pending.partition >= 0:  # one stored by an earlier version has a record
                yield self.timer_key(key), pending.partition, pending.items[0].ts

    def release(self, key: str, ctx: RuleContext) -> Iterator[tuple[float, Event]]:
        """The key's buffered events at or behind the watermark with their times, oldest first (removed from the
        buffer)."""
        mark = ctx.watermark
        by_key = self.held.get(ctx.partition) or {}  # changed below only when it held the key
        held = by_key.get(key)
        store = self._store(ctx)
        pending = store.get(key)
        if pending is None:
            if held is None or held[0][0] > mark:
                return  # nothing, or an entry of a timer since moved earlier
            items = held
        else:
            items = self._merged(pending, held)
            if held is not None:
                del by_key[key]
            if items[0][0] > mark:
                if held is not None:  # the key's held events join its stored ones
                    self._keep(store, key, items, ctx)
                return
        if items[-1][0] <= mark:
            due, rest = items, []
        else:
            due = [i for i in items if i[0] <= mark]
            rest = [i for i in items if i[0] > mark]
            ctx.set_timer(self.rule_id, self.timer_key(key), rest[0][0])
        if pending is None:
            if rest:
                by_key[key] = rest
            else:
                del by_key[key]
        elif rest:
            self._keep(store, key, rest, ctx)
        else:
            store.delete(key)
        for item in due:
            event = _event(item[3])
            if event is not None:
                yield item[0], event


def _order(item: Item) -> tuple[float, int, str]:
    return item[0], item[1], item[2]


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
    (:class:`yujing.protocols.KeepsTimers`): a buffered key is due at its
    earliest event, a memory at ``ts + keep_for``; an entry those no longer
    give releases nothing and forgets nothing when it comes up.
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
        base = self.buffer.key_of_timer(key)
        if base is not None:
            for ts, event in self.buffer.release(base, ctx):
                self.handle(base, event, ts, ctx)

    def end_batch(self, ctx: RuleContext) -> None:
        """Store the events the batch gave and the watermark has not passed (:class:`yujing.protocols.HoldsBatch`)."""
        self.buffer.end_batch(ctx)

    def forget_cached(self) -> None:
        """After a recovery: what an unfinished batch held is read again (:class:`yujing.protocols.CachesState`)."""
        self.buffer.forget_held()
