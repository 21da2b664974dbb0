"""The messages between the partition stage and the cohort stage when they run on different workers.

A cohort rule's groups (a region, a product) span every input partition, so
with several workers no one worker sees a group's whole traffic. As in Kafka
Streams and Flink, the partition stage then sends each cohort record to the
group's own partition of a repartition topic (``q``, by the group's hash),
and sends each input partition's watermark to *every* ``q``; the worker that
owns ``q`` runs the group's windows, on the minimum of the marks it has
received from all input partitions. This module is that exchange, free of
Kafka: the runner moves the messages (a topic, or a list in a test). What a
batch forwards goes packed (:func:`pack`): one :class:`Bundle` per input
stream and group partition, one :class:`Marks` per group partition.

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
>>> [into.admit(q, m.source, m.kind, m.seq) for q, m in sent + sent]  # delivered twice: admitted once
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

__all__ = [
    "IDLE",
    "Bundle",
    "CohortMessage",
    "ExchangeIn",
    "ExchangeOut",
    "Forwarded",
    "Marks",
    "PartitionMark",
    "decode_message",
    "encode_message",
    "pack",
]

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


class Bundle(msgspec.Struct, tag="b", array_like=True, frozen=True):
    """Consecutive records of one input stream for one group partition, numbered ``first``, ``first`` + 1, ...:
    what a batch forwards goes as a few messages, not one per record (see :func:`pack`)."""

    source: int
    kind: str
    first: int
    records: list[CohortRecord]


class Marks(msgspec.Struct, tag="ms", array_like=True, frozen=True):
    """Several input partitions' watermarks for one group partition: ``(source, mark)`` each."""

    marks: list[tuple[int, float]]


CohortMessage = Forwarded | PartitionMark | Bundle | Marks

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

    def forward(self, source: int, kind: str, q: int, record: CohortRecord) -> tuple[int, Forwarded]:
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

    def marks(self, marks: Mapping[int, float]) -> list[tuple[int, PartitionMark]]:
        """Each input partition's mark that moved since it was last sent, to every group partition."""
        out: list[tuple[int, PartitionMark]] = []
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

    def admit(self, q: int, source: int, kind: str, seq: int) -> bool:
        """Whether record ``seq`` of input ``source``'s stream ``kind`` is new to group partition ``q`` (and
        remember it)."""
        key = (q, source, kind)
        seen = self._seen.get(key)
        if seen is None:
            self._use_partition(q)
            seen = self.store.get(f"{q}|{source}|{kind}") or 0
        if seq <= seen:
            self._seen[key] = seen
            self.duplicates += 1
            return False
        self._seen[key] = seq
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


def pack(messages: Iterable[tuple[int, Forwarded | PartitionMark]]) -> list[tuple[int, CohortMessage]]:
    """What the partition stage forwarded (records and marks, in order) as few messages: consecutive records
    of one input stream for one ``q`` as one :class:`Bundle`, and the marks that follow them as one
    :class:`Marks` per ``q`` (the highest per input partition). Every record still reaches its ``q`` before
    any mark that followed it; only records of different input streams may change places, which the cohort
    stage never depends on (several workers' messages interleave anyhow).

    >>> import datetime as dt
    >>> r = CohortRecord("cohort:burst", "台州", dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc), "e1", "p0")
    >>> packed = pack([(1, Forwarded(0, "complaints", 5, r)), (1, Forwarded(0, "complaints", 6, r)),
    ...                (1, PartitionMark(0, 10.0)), (1, PartitionMark(3, 9.0)), (1, PartitionMark(0, 11.0))])
    >>> [(q, type(m).__name__) for q, m in packed], packed[0][1].first, len(packed[0][1].records), packed[1][1].marks
    ([(1, 'Bundle'), (1, 'Marks')], 5, 2, [(0, 11.0), (3, 9.0)])
    """
    out: list[tuple[int, CohortMessage]] = []
    bundles: dict[tuple[int, int, str], tuple[int, list[CohortRecord]]] = {}
    marks: dict[int, dict[int, float]] = {}

    def records_out() -> None:
        out.extend((q, Bundle(source, kind, first, records)) for (q, source, kind), (first, records) in bundles.items())
        bundles.clear()

    def marks_out() -> None:
        out.extend((q, Marks(sorted(by_source.items()))) for q, by_source in marks.items())
        marks.clear()

    for q, message in messages:
        if isinstance(message, Forwarded):
            if marks:
                marks_out()
            key = (q, message.source, message.kind)
            bundle = bundles.get(key)
            if bundle is not None and bundle[0] + len(bundle[1]) == message.seq:
                bundle[1].append(message.record)
                continue
            if bundle is not None:  # not consecutive (never from one batch): the earlier ones go first
                records_out()
            bundles[key] = (message.seq, [message.record])
        else:
            if bundles:
                records_out()
            by_source = marks.setdefault(q, {})
            by_source[message.source] = max(message.mark, by_source.get(message.source, -math.inf))
    records_out()
    marks_out()
    return out


def split(
    messages: Iterable[tuple[int, CohortMessage]], admit: Callable[[int, int, str, int], bool]
) -> tuple[list[tuple[int, CohortRecord]], dict[int, dict[int, float]]]:
    """A batch of messages as the cohort stage takes them: the new records by group partition, and the highest
    mark per group partition and input partition (marks only move forward). ``admit(q, source, kind, seq)``
    says whether a record is new (a redelivered bundle may overlap records already admitted)."""
    records: list[tuple[int, CohortRecord]] = []
    marks: dict[int, dict[int, float]] = {}
    for q, message in messages:
        if isinstance(message, Forwarded):
            if admit(q, message.source, message.kind, message.seq):
                records.append((q, message.record))
        elif isinstance(message, Bundle):
            source, kind, first = message.source, message.kind, message.first
            records.extend((q, record) for i, record in enumerate(message.records) if admit(q, source, kind, first + i))
        else:
            by_source = marks.setdefault(q, {})
            for source, mark in message.marks if isinstance(message, Marks) else [(message.source, message.mark)]:
                if mark > by_source.get(source, -math.inf):
                    by_source[source] = mark
    return records, marks
