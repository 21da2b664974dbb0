"""The error a rule spec raises while it compiles, located by a path inside the rule."""

from __future__ import annotations

from yujing.events import EVENT_TYPES

__all__ = ["SpecError", "check_event_types"]

_ALL_TYPES = frozenset(t for types in EVENT_TYPES.values() for t in types)


class SpecError(ValueError):
    """A spec that cannot compile; ``path`` locates the offending key, ``hint`` says what to do."""

    def __init__(self, message: str, path: tuple[str | int, ...], hint: str = "") -> None:
        super().__init__(message)
        self.path = path
        self.hint = hint


def check_event_types(types: frozenset[str], path: tuple[str | int, ...]) -> frozenset[str]:
    unknown = sorted(types - _ALL_TYPES)
    if unknown:
        raise SpecError(
            f"unknown event type {', '.join(unknown)}",
            path,
            hint="event types are: " + ", ".join(sorted(_ALL_TYPES)),
        )
    return types
