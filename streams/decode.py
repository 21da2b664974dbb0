"""Bytes off a topic → a typed event, or a dead letter with a reason naming the field.

Decoding is one call into a compiled msgspec decoder per topic. Anything the
contract rejects (not UTF-8, not JSON, missing or mistyped fields, an event
type of another topic, a key that is not the ``customer_id``) becomes a
:class:`DeadLetter` carrying the original bytes; the decoder never raises.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable, Mapping
from typing import Any

import msgspec

from yujing.events import TOPIC_KINDS, Event, event_kind

__all__ = ["REASONS", "DeadLetter", "Decoder"]

#: Bounded set of reason categories (a metric label); the full text is in ``DeadLetter.reason``.
REASONS = (
    "invalid_utf8",
    "invalid_json",
    "not_an_object",
    "missing_field",
    "wrong_type",
    "invalid_value",
    "too_long",
    "unknown_event_type",
    "key_mismatch",
    "unknown_topic",
)

_AT = re.compile(r" - at `\$\.?([^`]*)`")
_MISSING = re.compile(r"missing required field `([^`]+)`")


class _Probe(msgspec.Struct):
    event_type: str


class DeadLetter(msgspec.Struct, kw_only=True):
    """A rejected message: where it came from, why, and its original bytes."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    category: str
    field: str | None
    reason: str

    def to_json_record(self) -> dict[str, Any]:
        """A JSON-safe record (original bytes as UTF-8 text when possible, else base64)."""
        record: dict[str, Any] = {
            "topic": self.topic,
            "partition": self.partition,
            "offset": self.offset,
            "category": self.category,
            "field": self.field,
            "reason": self.reason,
            "key": self.key.decode("utf-8", "replace") if self.key is not None else None,
        }
        try:
            record["original"] = self.value.decode("utf-8")
        except UnicodeDecodeError:
            record["original_base64"] = base64.b64encode(self.value).decode()
        return record


def _classify(message: str) -> tuple[str, str | None]:
    at = _AT.search(message)
    field = (at.group(1).replace("[...]", "") or None) if at else None
    missing = _MISSING.search(message)
    if missing:
        return "missing_field", missing.group(1)
    if field is None and message.startswith("Expected `object`"):
        return "not_an_object", None
    if "Invalid enum value" in message and field == "event_type":
        return "unknown_event_type", field
    if "of length <=" in message:
        return "too_long", field
    if message.startswith("Expected `"):
        if any(op in message for op in (">=", "<=", "matching regex", "length >=", "timezone")):
            return "invalid_value", field
        return "wrong_type", field
    return "invalid_value", field


class Decoder:
    """Decodes the three topics; ``topics`` maps each topic name to its kind.

    >>> d = Decoder({"orders": "orders"})
    >>> d.decode("orders", 0, 0, None, b"{").category
    'invalid_json'
    """

    def __init__(self, topics: Mapping[str, str]) -> None:
        self.kinds = dict(topics)
        self.decoders = {name: msgspec.json.Decoder(TOPIC_KINDS[kind]).decode for name, kind in topics.items()}
        self.topic_of_kind = {kind: name for name, kind in topics.items()}
        self._probe = msgspec.json.Decoder(_Probe).decode

    def decode_many(
        self, records: Iterable[tuple[str, int, int, bytes | None, bytes | None]]
    ) -> tuple[list[Event], list[int], list[DeadLetter]]:
        """Decode a batch of ``(topic, partition, offset, key, value)``: its events with their partitions, in order,
        and its dead letters (one loop for the batch)."""
        accepted, rejected = self._accepted, self._rejected
        events: list[Event] = []
        placed: list[int] = []
        dead: list[DeadLetter] = []
        for topic, partition, offset, key, value, *_ in records:
            event = accepted(topic, key, value)
            if event is None:
                dead.append(rejected(topic, partition, offset, key, value))
            else:
                events.append(event)
                placed.append(partition)
        return events, placed, dead

    def infer_topic(self, value: bytes) -> str:
        """The topic an event belongs to, from its ``event_type`` (for files, which have no topic).

        Returns ``""`` when it cannot tell; decoding then dead-letters the message with the reason.
        """
        try:
            kind = event_kind(self._probe(value).event_type)
        except (msgspec.ValidationError, msgspec.DecodeError, UnicodeDecodeError):
            return ""
        return self.topic_of_kind.get(kind, "") if kind else ""

    def decode(self, topic: str, partition: int, offset: int, key: bytes | None, value: bytes | None) -> Event | DeadLetter:
        event = self._accepted(topic, key, value)
        return event if event is not None else self._rejected(topic, partition, offset, key, value)

    def _accepted(self, topic: str, key: bytes | None, value: bytes | None) -> Event | None:
        """The record's event when the contract accepts it (almost every record: one decode, no reasons)."""
        decode = self.decoders.get(topic)
        if decode is None or value is None:
            return None
        try:
            event = decode(value)
        except (msgspec.ValidationError, msgspec.DecodeError, UnicodeDecodeError):
            return None
        return event if key is None or key == event.customer_id.encode() else None

    def _rejected(self, topic: str, partition: int, offset: int, key: bytes | None, value: bytes | None) -> DeadLetter:
        """Why the contract rejects a record that :meth:`_accepted` did not take (decoded again for the reason:
        rejections are rare)."""
        raw = value if value is not None else b""
        if not topic:
            return self._undecidable(partition, offset, key, raw)
        decode = self.decoders.get(topic)
        if decode is None:
            return self._dead(topic, partition, offset, key, raw, "unknown_topic", None, f"topic {topic!r} is not configured")
        try:
            decode(raw)
        except msgspec.ValidationError as exc:
            text = str(exc)
            if "Invalid enum value" in text and "event_type" in text:
                text += f" (not an event type of topic {topic!r})"
            category, field = _classify(text)
            return self._dead(topic, partition, offset, key, raw, category, field, text)
        except msgspec.DecodeError as exc:
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError as bad:
                return self._dead(topic, partition, offset, key, raw, "invalid_utf8", None, f"not UTF-8: {bad.reason} at byte {bad.start}")
            return self._dead(topic, partition, offset, key, raw, "invalid_json", None, str(exc))
        except UnicodeDecodeError as exc:
            return self._dead(topic, partition, offset, key, raw, "invalid_utf8", None, f"not UTF-8: {exc.reason} at byte {exc.start}")
        return self._dead(  # it decodes: what _accepted refused is its key
            topic,
            partition,
            offset,
            key,
            raw,
            "key_mismatch",
            "customer_id",
            "message key does not equal `customer_id` (topics are partitioned by it)",
        )

    def _undecidable(self, partition: int, offset: int, key: bytes | None, raw: bytes) -> DeadLetter:
        """A file line whose stream cannot be told: decode it as an order to get the precise reason."""
        any_topic = next(iter(self.decoders))
        letter = self.decode(any_topic, partition, offset, key, raw)
        if isinstance(letter, DeadLetter) and letter.category != "unknown_event_type":
            return msgspec.structs.replace(letter, topic="")
        return self._dead(
            "",
            partition,
            offset,
            key,
            raw,
            "unknown_event_type",
            "event_type",
            "`event_type` missing or not one of the contract's event types",
        )

    @staticmethod
    def _dead(
        topic: str, partition: int, offset: int, key: bytes | None, value: bytes, category: str, field: str | None, reason: str
    ) -> DeadLetter:
        return DeadLetter(
            topic=topic, partition=partition, offset=offset, key=key, value=value, category=category, field=field, reason=reason
        )
