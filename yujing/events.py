"""Typed events per the wire contract (``docs/contracts/events.md``).

Each topic has one msgspec Struct; decoding with a compiled msgspec decoder
validates types, required fields, enums, lengths and patterns in one pass,
so nothing walks dicts by hand. Unknown top-level fields are ignored, as the
contract allows.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

import msgspec
from msgspec import Meta

__all__ = [
    "EVENT_FIELDS",
    "EVENT_TYPES",
    "TOPIC_KINDS",
    "BillEvent",
    "BillItem",
    "ComplaintEvent",
    "Event",
    "OrderEvent",
    "Tier",
    "event_kind",
]

Timestamp = Annotated[dt.datetime, Meta(tz=True)]
Tier = Literal["platinum", "gold", "silver", "standard"]
AttrValue = str | int | float | bool

OrderType = Literal["order.created", "order.scheduled", "order.completed", "order.cancelled"]
BillType = Literal["bill.issued", "bill.adjusted", "refund.issued"]
ComplaintType = Literal[
    "complaint.opened",
    "complaint.updated",
    "complaint.escalated",
    "complaint.closed",
    "complaint.reopened",
]


class _Common(msgspec.Struct, kw_only=True, omit_defaults=True):
    event_id: Annotated[str, Meta(min_length=1, max_length=128)]
    event_type: str
    ts: Timestamp
    customer_id: Annotated[str, Meta(min_length=1, max_length=64)]
    region: str | None = None
    product: str | None = None
    channel: str | None = None
    tier: Tier | None = None
    attrs: dict[str, AttrValue] | None = None


class OrderEvent(_Common, kw_only=True, omit_defaults=True):
    """An event of the ``orders`` topic."""

    event_type: OrderType
    order_id: Annotated[str, Meta(min_length=1)]
    plan_id: str | None = None
    monthly_fee: Annotated[float, Meta(ge=0)] | None = None
    promised_at: Timestamp | None = None


class BillItem(msgspec.Struct, kw_only=True):
    """One line of a bill."""

    code: str
    name: str
    amount: float


class BillEvent(_Common, kw_only=True, omit_defaults=True):
    """An event of the ``billing`` topic."""

    event_type: BillType
    bill_id: Annotated[str, Meta(min_length=1)]
    cycle: Annotated[str, Meta(pattern=r"^[0-9]{4}-(0[1-9]|1[0-2])$")]
    amount: float
    order_id: str | None = None
    plan_fee: Annotated[float, Meta(ge=0)] | None = None
    is_first_bill: bool | None = None
    items: list[BillItem] | None = None


class ComplaintEvent(_Common, kw_only=True, omit_defaults=True):
    """An event of the ``complaints`` topic. ``text`` is required on ``complaint.opened``."""

    event_type: ComplaintType
    complaint_id: Annotated[str, Meta(min_length=1)]
    text: Annotated[str, Meta(max_length=20_000)] | None = None
    category: str | None = None
    order_id: str | None = None
    resolution: Literal["resolved", "unresolved"] | None = None
    satisfaction: Annotated[int, Meta(ge=1, le=5)] | None = None

    def __post_init__(self) -> None:
        if self.text is None and self.event_type == "complaint.opened":
            raise ValueError("Object missing required field `text` - at `$.text`")


Event = OrderEvent | BillEvent | ComplaintEvent

#: Event kind (the contract's name for each stream) → its struct.
TOPIC_KINDS: dict[str, type[OrderEvent] | type[BillEvent] | type[ComplaintEvent]] = {
    "orders": OrderEvent,
    "billing": BillEvent,
    "complaints": ComplaintEvent,
}

#: Every event type, by kind.
EVENT_TYPES: dict[str, tuple[str, ...]] = {
    "orders": OrderType.__args__,  # type: ignore[attr-defined]
    "billing": BillType.__args__,  # type: ignore[attr-defined]
    "complaints": ComplaintType.__args__,  # type: ignore[attr-defined]
}

#: Every field name any event may carry (rules validate field paths against it).
EVENT_FIELDS: frozenset[str] = frozenset(name for struct in TOPIC_KINDS.values() for name in struct.__struct_fields__)

_KIND_BY_TYPE = {t: kind for kind, types in EVENT_TYPES.items() for t in types}


def event_kind(event_type: str) -> str | None:
    """The stream (``orders``, ``billing``, ``complaints``) an event type belongs to."""
    return _KIND_BY_TYPE.get(event_type)
