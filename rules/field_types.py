"""What a field is on the event types a condition applies to, read off the event contract (``yujing.events``).

A condition on ``bill.issued`` that reads ``text`` reads a field bills never
carry; ``tier == 'golden'`` compares with a value no tier has; ``amount > '5'``
compares a number with text. Each would load and silently never match. A
:func:`typed_resolver` for the condition's event types refuses the first, and
gives every getter its :class:`FieldType`, which :mod:`rules.expr` and
:mod:`rules.conditions` check operators and literals against.

>>> tier = field_type("tier", frozenset({"order.created"}))
>>> tier.kind, sorted(tier.values)
('str', ['gold', 'platinum', 'silver', 'standard'])
>>> field_type("text", frozenset({"bill.issued"}))
Traceback (most recent call last):
...
rules.fields.FieldError: bill.issued events have no field `text` (complaint events have it)
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cache
from typing import Any

import msgspec

from rules.fields import FieldError, Getter, compile_field
from yujing.events import TOPIC_KINDS, event_kind

__all__ = ["ANY", "FieldType", "field_type", "static_type", "typed_resolver"]


@dataclass(frozen=True)
class FieldType:
    """A field's kind (``num``, ``str``, ``bool``, ``time``, ``list``, ``any``) and, for enums, its values."""

    kind: str
    values: frozenset[str] | None = None

    def describe(self) -> str:
        return _DESCRIBED.get(self.kind, "a value")


_DESCRIBED = {"num": "a number", "str": "text", "bool": "true or false", "time": "a timestamp", "list": "a list", "null": "null"}


ANY = FieldType("any")


def _of(info: Any) -> FieldType:
    if isinstance(info, msgspec.inspect.UnionType):
        kinds = [_of(t) for t in info.types if not isinstance(t, msgspec.inspect.NoneType)]
        if len(kinds) == 1:
            return kinds[0]
        return ANY
    if isinstance(info, msgspec.inspect.StrType):
        return FieldType("str")
    if isinstance(info, msgspec.inspect.LiteralType):
        if all(isinstance(v, str) for v in info.values):
            return FieldType("str", frozenset(info.values))
        return ANY
    if isinstance(info, msgspec.inspect.IntType | msgspec.inspect.FloatType):
        return FieldType("num")
    if isinstance(info, msgspec.inspect.BoolType):
        return FieldType("bool")
    if isinstance(info, msgspec.inspect.DateTimeType):
        return FieldType("time")
    if isinstance(info, msgspec.inspect.ListType):
        return FieldType("list")
    return ANY


@cache
def _fields(kind: str) -> dict[str, FieldType]:
    info = msgspec.inspect.type_info(TOPIC_KINDS[kind])
    return {f.name: _of(f.type) for f in info.fields}  # type: ignore[attr-defined]


def _joined(types: list[FieldType]) -> FieldType:
    kinds = {t.kind for t in types}
    if len(kinds) != 1:
        return ANY
    values = [t.values for t in types]
    if any(v is None for v in values):
        return FieldType(kinds.pop())
    return FieldType(kinds.pop(), frozenset().union(*values))  # type: ignore[arg-type]


def field_type(path: str, event_types: Iterable[str]) -> FieldType:
    """The type of ``path`` on these event types; :class:`FieldError` when none of them carries it."""
    head = path.partition(".")[0]
    kinds = sorted({k for t in event_types if (k := event_kind(t)) is not None})
    if not kinds or head == "attrs":
        return ANY  # no contract to read (a rule's own scope), or upstream attributes: any value
    found = [_fields(k)[head] for k in kinds if head in _fields(k)]
    if not found:
        holders = sorted(k.removesuffix("s") for k in TOPIC_KINDS if head in _fields(k))
        names = ", ".join(sorted(event_types))
        hint = f" ({' and '.join(holders)} events have it)" if holders else ""
        raise FieldError(f"{names} events have no field `{head}`{hint}")
    if head == "event_type":
        return FieldType("str", frozenset(t for t in event_types))
    return _joined(found)


def static_type(get: Getter) -> FieldType:
    """The type a typed getter carries (:data:`ANY` for an untyped one)."""
    return getattr(get, "static_type", ANY)


def typed_resolver(event_types: Iterable[str], base: Callable[[str], Getter] = compile_field) -> Callable[[str], Getter]:
    """A resolver for conditions on ``event_types``: fields those events lack are errors; getters carry their type."""
    types = frozenset(event_types)

    def resolve(path: str) -> Getter:
        get = base(path)  # first: an unknown field is named as such (with a guess)
        known = field_type(path, types)
        get.static_type = known  # type: ignore[attr-defined]  # on the getter itself: no extra call per event
        return get

    return resolve
