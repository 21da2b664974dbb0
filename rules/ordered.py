"""Handing a key's events to a rule in event-time order, once the watermark has passed them.

Rules that compare an event with what came *before* it for the same key
(``compare``, ``change``) must not depend on arrival order: events of one key
may arrive out of order by up to the allowed lateness. Such a rule buffers
each event here (as its JSON, per key, bounded) with a timer at its
event time; when the watermark passes, :meth:`OrderedBuffer.release` gives the
due events sorted by ``(ts, event_id)``. An event that arrives already behind
the watermark (late) is handed over at once. A redelivered event (same id)
is buffered once.
"""

from __future__ import annotations

from collections.abc import Iterator

import msgspec

from yujing.events import TOPIC_KINDS, Event, event_kind
from yujing.protocols import KeyedState, RuleContext

__all__ = ["OrderedBuffer", "Pending"]

# JSON, not msgpack: it keeps each timestamp's own UTC offset (msgpack turns them into UTC).
_ENCODE = msgspec.json.Encoder().encode
_DECODERS = {kind: msgspec.json.Decoder(struct) for kind, struct in TOPIC_KINDS.items()}
_TIMER = "\x1eordered"


class Pending(msgspec.Struct, array_like=True):
    """One buffered event."""

    ts: float
    event_id: str
    kind: str
    raw: bytes


class PendingList(msgspec.Struct, array_like=True):
    items: list[Pending] = []


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
        pending = store.get(key) or PendingList()
        if any(p.event_id == event.event_id for p in pending.items):
            return True  # a redelivery: buffered already
        kind = event_kind(event.event_type) or ""
        pending.items.append(Pending(ts, event.event_id, kind, _ENCODE(event)))
        pending.items.sort(key=lambda p: (p.ts, p.event_id))
        del pending.items[: max(0, len(pending.items) - self.max_pending)]
        store.set(key, pending)
        ctx.set_timer(self.rule_id, self.timer_key(key), pending.items[0].ts)
        return True

    def release(self, key: str, ctx: RuleContext) -> Iterator[Event]:
        """The key's buffered events at or behind the watermark, oldest first (removed from the buffer)."""
        store = self._store(ctx)
        pending = store.get(key)
        if pending is None:
            return
        mark = ctx.watermark
        due = [p for p in pending.items if p.ts <= mark]
        rest = [p for p in pending.items if p.ts > mark]
        if rest:
            store.set(key, PendingList(rest))
            ctx.set_timer(self.rule_id, self.timer_key(key), rest[0].ts)
        else:
            store.delete(key)
        for item in due:
            decoder = _DECODERS.get(item.kind)
            if decoder is not None:
                yield decoder.decode(item.raw)
