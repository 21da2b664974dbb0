"""The batch journal: a batch's state writes made all-or-nothing on a changelog without transactions.

A batch changes many keys, and the changelog gets one message per key. A worker
killed while it sends them leaves the changelog with part of the batch: some
state already moved by its events, while the input positions (sent last) still
say the events are to be read. Read again, they would act twice on the part
that was stored: a count counted twice, a silence not seen (this lost
``hotline-silent`` alerts under SIGKILL). Kafka transactions would make the
batch atomic; the test broker has none from aiokafka, and they cost a round
trip per batch.

So a batch's writes are first sent whole, as a journal, before any of its
per-key messages:

* the journal's *head* (in the lowest partition the batch writes) holds every
  write of the batch; each other partition the batch writes gets the journal of
  its own writes. Each is cut into chunks of at most ``CHUNK_BYTES``, all
  tagged with the batch's sequence number, so a journal is whole or ignored.
* After a restart, each recovered partition takes its writes from the newest
  whole journal that has them and applies them again (:func:`replay`). They are
  absolute values (a key's value after the batch, or a deletion), so applying
  them over a store that has all, part or none of them gives the same store.

If the kill comes before the head is whole, no per-key message of the batch was
sent either: the batch is simply read again. The per-partition copies keep a
partition whole on a worker that recovers it without the head's partition
(several workers). The cohort stage writes only to the group partitions its
worker owns (co-partitioned with the inputs), so the same holds for it.

>>> writes = [(0, b"a", b"1"), (3, b"b", None)]
>>> messages = journal_messages(writes, seq=7)
>>> sorted({(p, k.split(SEP)[-2]) for p, k, _ in messages})
[(0, b'0'), (3, b'3')]
>>> replay([(k, v) for _, k, v in messages], partitions={3})
[(3, b'b', None)]
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import msgspec

__all__ = ["CHUNK_BYTES", "JOURNAL_PREFIX", "SEP", "Write", "journal_messages", "replay"]

SEP = b"\x1f"
#: Keys ``~journal \x1f <partition> \x1f <chunk>`` in the state table.
JOURNAL_PREFIX = b"~journal" + SEP
#: Well below the producer's request limit (8 MB) and the broker's message limit (1 MB by default).
CHUNK_BYTES = 512 * 1024

Write = tuple[int, bytes, bytes | None]


class _Chunk(msgspec.Struct, array_like=True):
    seq: int
    index: int
    count: int
    head: bool
    writes: list[tuple[int, bytes, bytes | None]]


_encode = msgspec.msgpack.Encoder().encode
_decode = msgspec.msgpack.Decoder(_Chunk).decode


def _chunks(writes: Sequence[Write], limit: int) -> list[list[Write]]:
    out: list[list[Write]] = [[]]
    size = 0
    for write in writes:
        cost = len(write[1]) + (len(write[2]) if write[2] is not None else 0) + 16
        if out[-1] and size + cost > limit:
            out.append([])
            size = 0
        out[-1].append(write)
        size += cost
    return out


def journal_messages(writes: Sequence[Write], seq: int, limit: int = CHUNK_BYTES) -> list[Write]:
    """The journal of one batch's ``writes`` as changelog messages ``(partition, key, value)``: the head first."""
    by_partition: dict[int, list[Write]] = {}
    for write in writes:
        by_partition.setdefault(write[0], []).append(write)
    head = min(by_partition)
    out: list[Write] = []
    for partition in sorted(by_partition):
        mine = writes if partition == head else by_partition[partition]
        parts = _chunks(mine, limit)
        for index, part in enumerate(parts):
            key = JOURNAL_PREFIX + str(partition).encode() + SEP + str(index).encode()
            out.append((partition, key, _encode(_Chunk(seq, index, len(parts), partition == head, list(part)))))
    return out


def replay(entries: Iterable[tuple[bytes, bytes]], partitions: set[int] | None = None) -> list[Write]:
    """The writes to apply again after a restart, from the journal ``entries`` (key, value) found in the store.

    For each partition (of ``partitions``, or all), the writes of the newest whole journal that has its
    writes: its own, or a head's.
    """
    pieces: dict[tuple[int, int], dict[int, _Chunk]] = {}
    for key, value in entries:
        partition = int(key[len(JOURNAL_PREFIX) :].split(SEP)[0])
        chunk = _decode(value)
        pieces.setdefault((partition, chunk.seq), {})[chunk.index] = chunk
    newest: dict[int, tuple[int, list[Write]]] = {}
    for (_, seq), chunks in pieces.items():
        count = next(iter(chunks.values())).count
        if len(chunks) != count or any(c.count != count for c in chunks.values()):
            continue  # a journal cut short: its batch sent nothing else
        for index in range(count):
            for write in chunks[index].writes:
                partition = write[0]
                if partitions is not None and partition not in partitions:
                    continue
                best = newest.get(partition)
                if best is None or best[0] < seq:
                    newest[partition] = (seq, [write])
                elif best[0] == seq:
                    best[1].append(write)
    out: list[Write] = []
    for partition in sorted(newest):
        seen: dict[bytes, Write] = {}
        for write in newest[partition][1]:  # a head and the partition's own journal of one batch both hold it
            seen[write[1]] = write
        out.extend(seen.values())
    return out
