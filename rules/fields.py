"""Field paths into events (``text``, ``attrs.plan``): validation and compiled getters."""

from __future__ import annotations

import difflib
from collections.abc import Callable
from typing import Any

from rules.errors import SpecError
from yujing.events import EVENT_FIELDS

__all__ = ["FieldError", "Getter", "compile_field", "field_or_error", "key_getter"]

Getter = Callable[[Any], Any]


class FieldError(ValueError):
    """A field path that no event has."""


def compile_field(path: str) -> Getter:
    """A getter for ``path``; ``None`` when the event lacks the field (null-safe).

    >>> from yujing.events import OrderEvent
    >>> compile_field("attrs.x")(OrderEvent.__new__(OrderEvent)) is None
    True
    """
    head, _, rest = path.partition(".")
    if head not in EVENT_FIELDS:
        close = difflib.get_close_matches(head, EVENT_FIELDS, n=1)
        guess = f" (did you mean `{close[0]}`?)" if close else ""
        raise FieldError(f"unknown field `{head}`{guess}; events have: {', '.join(sorted(EVENT_FIELDS))}")
    if head == "attrs":
        if not rest or "." in rest:
            raise FieldError("use `attrs.NAME` for an upstream attribute")

        def get_attr(event: Any, name: str = rest) -> Any:
            attrs = getattr(event, "attrs", None)
            return attrs.get(name) if attrs else None

        return get_attr
    if rest:
        raise FieldError(f"field `{head}` has no sub-fields")

    def get(event: Any, name: str = head) -> Any:
        return getattr(event, name, None)

    return get


def field_or_error(path: str, where: tuple[str | int, ...]) -> Getter:
    """:func:`compile_field`, raising a located :class:`rules.errors.SpecError`."""
    try:
        return compile_field(path)
    except FieldError as exc:
        raise SpecError(str(exc), where) from None


def key_getter(path: str, where: tuple[str | int, ...]) -> Callable[[Any], str | None]:
    """A getter for a rule's ``key`` field: the value as text, or ``None`` when the event lacks it."""
    get = field_or_error(path, where)

    def key_of(event: Any) -> str | None:
        value = get(event)
        return None if value is None else str(value)

    return key_of
