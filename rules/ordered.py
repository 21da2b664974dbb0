"""Handing a key's events to a rule in event-time order, once the watermark has passed them.

Rules that compare an event with what came *before* it for the same key
(``compare``, ``change``) must not depend on arrival order: events of one key
may arrive out of order by up to the allowed lateness. Such a rule buffers
each event here (as its JSON, per key, bounded) with a timer at its
event time; when the watermark passes, :meth:`OrderedBuffer.release` gives the
due events sorted by event time; events of the same instant come in the order of
their streams (an order before its bill, a bill before a complaint about it), then
by ``event_id``, so a first bill issued the second its order was created is
compared with that order whatever their ids. An event that arrives already behind
the watermark (late) is handed over at once. A redelivered event (same id)
is buffered once.
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


class Pending(msgspec.Struct, array_like=True):
    """One buffered event."""

    ts: float
    event_id: str
    kind: str
    raw: bytes


class PendingList(msgspec.Struct, array_like=True):
    items: list[Pending] = []
    partition: int = -1  # the input partition whose timer the first item's time is (-1: from a version with timer records)


def _in_order(p: Pending) -> tuple[float, int, str]:
    return p.ts, _STREAM_RANK.get(p.kind, 3), p.event_id


class OrderedBuffer:
    """A per-key buffer of events waiting for the watermark (one per rule)."""

    def __init__(self, rule_id: str, namespace: str, max_pending: int = 64) -> None:
        self.rule_id = rule_id
        self.namespace = namespace
        self.max_pending = max_pending

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
        """Buffer ``event``; ``False`` when it is already behind the watermark (handle it now)."""
        if ts < ctx.watermark:
            return False
        store = self._store(ctx)
        item = Pending(ts, event.event_id, _KIND_OF.get(type(event), ""), _ENCODE(event))
        pending = store.get(key)
        if pending is None:  # most keys wait for one event at a time
            store.set(key, PendingList([item], ctx.partition))
            ctx.set_timer(self.rule_id, self.timer_key(key), ts)
            return True
        items = pending.items
        if any(p.event_id == item.event_id for p in items):
            return True  # a redelivery: buffered already
        first = items[0]
        items.append(item)
        items.sort(key=_in_order)
        del items[: max(0, len(items) - self.max_pending)]
        pending.partition = ctx.partition
        store.set(key, pending)
        if items[0] is not first:  # the key's timer stands at its earliest event's time
            ctx.set_timer(self.rule_id, self.timer_key(key), items[0].ts)
        return True

    def stored_timers(self, ctx: RuleContext) -> Iterator[tuple[str, int, float]]:
        """Each buffered key's timer, at its earliest event's time (see :class:`yujing.protocols.KeepsTimers`)."""
        for key, pending in self._store(ctx).items():
            if pending.items and pending.partition >= 0:  # one stored by an earlier version has a record
                yield self.timer_key(key), pending.partition, pending.items[0].ts

    def release(self, key: str, ctx: RuleContext) -> Iterator[Event]:
        """The key's buffered events at or behind the watermark, oldest first (removed from the buffer)."""
        store = self._store(ctx)
        pending = store.get(key)
        if pending is None:
            return
        mark = ctx.watermark
        items = pending.items
        if items[0].ts > mark:
            return  # an entry of a timer since moved earlier: the key's timer stands at its first event
        if items[-1].ts <= mark:
            store.delete(key)
            due = items
        else:
            due = [p for p in items if p.ts <= mark]
            rest = [p for p in items if p.ts > mark]
            store.set(key, PendingList(rest, ctx.partition))
            ctx.set_timer(self.rule_id, self.timer_key(key), rest[0].ts)
        for item in due:
            decoder = _DECODERS.get(item.kind)
            if decoder is not None:
                yield decoder.decode(item.raw)


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
            for event in self.buffer.release(base, ctx):
                self.handle(base, event, event.ts.timestamp(), ctx)
