"""The messages between the partition stage and the cohort stage when they run on different workers.

A cohort rule's groups (a region, a product) span every input partition, so
with several workers no one worker sees a group's whole traffic. As in Kafka
Streams and Flink, the partition stage then sends each cohort record to the
group's own partition of a repartition topic (``q``, by the group's hash),
and sends each input partition's watermark to *every* ``q``; the worker that
owns ``q`` runs the group's windows, on the minimum of the marks it has
received from all input partitions. This module is that exchange, free of
Kafka: the runner moves the messages (a topic, or a list in a test).

Redelivery never counts a record twice. Each record carries a sequence number
per ``(input partition, stream, q)``: the n-th record forwarded from that
input stream to that group partition. A stream's records are forwarded in
offset order, so a partition stage replaying from its stored state (after a
crash, or on a new owner after a rebalance) numbers them as before; the
cohort stage keeps the last number admitted per ``(input partition, stream)``
and drops what it has seen. Marks only move forward, so a repeated or older
mark changes nothing.

An input partition that holds no events at all would hold every group's time
for ever; once its owner has waited ``idle_after`` for it, it sends
:data:`IDLE` (``+inf``): the group partitions then go on without it, until
it reports a real mark.

>>> import datetime as dt
>>> from streams.engine.state import DictBackend
>>> record = CohortRecord("cohort:burst", "台州", dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc), "e1", "p0")
>>> out, into = ExchangeOut(DictBackend(), partitions=2), ExchangeIn(DictBackend())
>>> sent = [out.forward(0, "complaints", 1, record), out.forward(0, "complaints", 1, record)]
>>> [(q, m.seq) for q, m in sent]
[(1, 1), (1, 2)]
>>> [into.admit(q, m) for q, m in sent + sent]  # delivered twice: admitted once
[True, True, False, False]
>>> sorted((q, m.source, m.mark) for q, m in out.marks({0: 100.0}))
[(0, 0, 100.0), (1, 0, 100.0)]
>>> out.marks({0: 100.0})  # unchanged: nothing to send
[]
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping

import msgspec

from yujing.cohort import CohortRecord
from yujing.protocols import KeyedState, StateBackend

__all__ = ["IDLE", "CohortMessage", "ExchangeIn", "ExchangeOut", "Forwarded", "PartitionMark", "decode_message", "encode_message"]

#: The mark of an input partition its owner has given up waiting for (no event yet, silent for ``idle_after``).
IDLE = math.inf


class Forwarded(msgspec.Struct, tag="r", array_like=True, frozen=True):
    """A cohort record on its way to its group's partition, numbered within its input stream."""

    source: int  # the input partition
    kind: str  # the input stream (orders, billing, complaints)
    seq: int  # 1, 2, ... per (source, kind, group partition)
    record: CohortRecord


class PartitionMark(msgspec.Struct, tag="m", array_like=True, frozen=True):
    """An input partition's watermark, sent to every group partition (:data:`IDLE`: not holding)."""

    source: int
    mark: float


CohortMessage = Forwarded | PartitionMark

_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(CohortMessage)  # type: ignore[arg-type]


def encode_message(message: CohortMessage) -> bytes:
    return _encoder.encode(message)


def decode_message(data: bytes) -> CohortMessage:
    return _decoder.decode(data)  # type: ignore[no-any-return]


class ExchangeOut:
    """The partition stage's side: numbers forwarded records, and sends marks that moved.

    Sequence numbers live in the input partition's state (written once per dirty key by :meth:`save`),
    so they are recovered with the state and input positions they go with.
    """

    def __init__(self, backend: StateBackend, partitions: int, prefix: str = "") -> None:
        self.partitions = partitions
        self.store: KeyedState[int] = backend.namespace(prefix + "~exchange-seq", int)
        self._use_partition = backend.use_partition
        self._seq: dict[tuple[int, str, int], int] = {}
        self._dirty: set[tuple[int, str, int]] = set()
        self._sent: dict[int, float] = {}  # the mark last sent per input partition (memory: resent after a restart)

    def forward(self, source: int, kind: str, q: int, record: CohortRecord) -> tuple[int, CohortMessage]:
        """The message that takes ``record`` (from input ``source``'s stream ``kind``) to group partition ``q``."""
        key = (source, kind, q)
        seq = self._seq.get(key)
        if seq is None:
            self._use_partition(source)
            seq = self.store.get(f"{source}|{kind}|{q}") or 0
        seq += 1
        self._seq[key] = seq
        self._dirty.add(key)
        return q, Forwarded(source, kind, seq, record)

    def marks(self, marks: Mapping[int, float]) -> list[tuple[int, CohortMessage]]:
        """Each input partition's mark that moved since it was last sent, to every group partition."""
        out: list[tuple[int, CohortMessage]] = []
        for source, mark in marks.items():
            if mark == -math.inf or self._sent.get(source) == mark:
                continue
            self._sent[source] = mark
            message = PartitionMark(source, mark)
            out.extend((q, message) for q in range(self.partitions))
        return out

    def save(self) -> None:
        for source, kind, q in sorted(self._dirty):
            self._use_partition(source)
            self.store.set(f"{source}|{kind}|{q}", self._seq[(source, kind, q)])
        self._dirty.clear()

    def forget(self) -> None:
        """After a restart or a rebalance: numbers are read from state again, and every mark is sent again."""
        self._seq.clear()
        self._dirty.clear()
        self._sent.clear()


class ExchangeIn:
    """The cohort stage's side: admits each forwarded record once, in the group partition's state."""

    def __init__(self, backend: StateBackend, prefix: str = "") -> None:
        self.store: KeyedState[int] = backend.namespace(prefix + "~exchange-seen", int)
        self._use_partition = backend.use_partition
        self._seen: dict[tuple[int, int, str], int] = {}
        self._dirty: set[tuple[int, int, str]] = set()
        self.duplicates = 0

    def admit(self, q: int, message: Forwarded) -> bool:
        """Whether the record is new to group partition ``q`` (and remember it)."""
        key = (q, message.source, message.kind)
        seen = self._seen.get(key)
        if seen is None:
            self._use_partition(q)
            seen = self.store.get(f"{q}|{message.source}|{message.kind}") or 0
        if message.seq <= seen:
            self._seen[key] = seen
            self.duplicates += 1
            return False
        self._seen[key] = message.seq
        self._dirty.add(key)
        return True

    def save(self) -> None:
        for q, source, kind in sorted(self._dirty):
            self._use_partition(q)
            self.store.set(f"{q}|{source}|{kind}", self._seen[(q, source, kind)])
        self._dirty.clear()

    def forget(self) -> None:
        self._seen.clear()
        self._dirty.clear()


def split(
    messages: Iterable[tuple[int, CohortMessage]], admit: Callable[[int, Forwarded], bool]
) -> tuple[list[tuple[int, CohortRecord]], dict[int, dict[int, float]]]:
    """A batch of messages as the cohort stage takes them: the new records by group partition, and the highest
    mark per group partition and input partition (marks only move forward)."""
    records: list[tuple[int, CohortRecord]] = []
    marks: dict[int, dict[int, float]] = {}
    for q, message in messages:
        if isinstance(message, Forwarded):
            if admit(q, message):
                records.append((q, message.record))
        else:
            by_source = marks.setdefault(q, {})
            if message.mark > by_source.get(message.source, -math.inf):
                by_source[message.source] = message.mark
    return records, marks
