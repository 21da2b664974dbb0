"""Keyed state over plain dicts (local runner, tests) and the codec used to persist it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Generic, TypeVar

import msgspec

__all__ = ["DictBackend", "DictState", "PackedDictState", "StateCodec"]

V = TypeVar("V")


class DictState(Generic[V]):
    """A :class:`yujing.protocols.KeyedState` over a dict, values kept as objects."""

    __slots__ = ("data",)

    def __init__(self) -> None:
        self.data: dict[str, V] = {}

    def get(self, key: str) -> V | None:
        return self.data.get(key)

    def set(self, key: str, value: V) -> None:
        self.data[key] = value

    def delete(self, key: str) -> None:
        self.data.pop(key, None)

    def items(self) -> Iterator[tuple[str, V]]:
        return iter(list(self.data.items()))

    def __len__(self) -> int:
        return len(self.data)


class PackedDictState(Generic[V]):
    """A :class:`yujing.protocols.KeyedState` over a dict, values kept as their msgpack bytes.

    A small msgspec struct as an object costs several hundred bytes with its lists, dicts and strs; as bytes,
    a quarter of that. Reads decode a copy: change it, then ``set`` it.

    >>> import msgspec
    >>> class Point(msgspec.Struct, array_like=True):
    ...     x: int
    >>> points = PackedDictState(Point)
    >>> points.set("a", Point(3)); points.data["a"], points.get("a")
    (b'\\x91\\x03', Point(x=3))
    """

    __slots__ = ("codec", "data")

    def __init__(self, value_type: type[V]) -> None:
        self.data: dict[str, bytes] = {}
        self.codec = StateCodec(value_type)

    def get(self, key: str) -> V | None:
        raw = self.data.get(key)
        return None if raw is None else self.codec.decode(raw)

    def set(self, key: str, value: V) -> None:
        self.data[key] = self.codec.encode(value)

    def delete(self, key: str) -> None:
        self.data.pop(key, None)

    def items(self) -> Iterator[tuple[str, V]]:
        decode = self.codec.decode
        return iter([(key, decode(raw)) for key, raw in self.data.items()])

    def __len__(self) -> int:
        return len(self.data)


class DictBackend:
    """State in process memory: what the local runner, backtests and unit tests use.

    >>> backend = DictBackend()
    >>> watches = backend.namespace("sla:install", int)
    >>> watches.set("ord-1", 3); watches.get("ord-1")
    3
    """

    def __init__(self) -> None:
        self.namespaces: dict[str, DictState[Any] | PackedDictState[Any]] = {}

    def namespace(self, name: str, value_type: type[V], packed: bool = False) -> DictState[V] | PackedDictState[V]:
        ns = self.namespaces.get(name)
        if ns is None:
            ns = self.namespaces[name] = PackedDictState(value_type) if packed else DictState()
        return ns

    def use_partition(self, partition: int) -> None:
        """Dict state has no changelog: nothing to route."""

    def flush(self) -> None:
        """Dict state is never persisted."""

    def size(self) -> int:
        """Entries over all namespaces (for tests and memory checks)."""
        return sum(len(ns) for ns in self.namespaces.values())


class StateCodec(Generic[V]):
    """Bytes ↔ value for one namespace, with a compiled msgpack decoder for its type."""

    __slots__ = ("decode", "encode")

    def __init__(self, value_type: type[V]) -> None:
        self.encode = msgspec.msgpack.Encoder().encode
        self.decode = msgspec.msgpack.Decoder(value_type).decode
