"""Keyed state on one faust Table: changelog-backed, recovered by faust after a restart.

All namespaces share one table (``<app>-state``); a key is
``namespace \\x1f key`` and a value is msgpack bytes. Writes of a batch are
collected and flushed once (:meth:`FaustBackend.flush`): one changelog
message per key changed in the batch, sent (:meth:`FaustBackend.send_changelog`)
to the changelog partition of the input partition that owns the key. Because the partition is explicit,
timers fired by idle advance (outside any stream event) can write state too.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator, Sequence
from typing import Any, Generic, Protocol, TypeVar

from aiokafka.errors import KafkaError
from faust.types import TP

from streams.engine.state import StateCodec
from streams.faust_internals import (
    rocksdb_db_for_partition,
    rocksdb_dbs_for_actives,
    rocksdb_dbs_for_key,
    rocksdb_key_index,
    store_key_partitions,
)
from streams.journal import JOURNAL_PREFIX, Write, journal_messages, replay

__all__ = ["ChangelogProducer", "FaustBackend", "FaustState"]

V = TypeVar("V")
log = logging.getLogger(__name__)
_DELETED = object()
SEP = "\x1f"
SEP_BYTES = SEP.encode()


class ChangelogProducer(Protocol):
    """Sends a wave of changelog messages (:class:`streams.faust_internals.BatchProducer` in the worker)."""

    async def send_wave(self, topic: str, wave: Sequence[Write], tail: Sequence[Write] = ()) -> list[Any]:
        """Send ``(partition, key, value)`` messages, each partition's in order, and after them each partition's
        messages of ``tail`` in record batches of their own; return, once the broker has them all,
        acknowledgements with ``partition`` and ``offset`` (the lowest per partition is the wave's first)."""
        ...


class FaustState(Generic[V]):
    """One namespace of a :class:`FaustBackend`."""

    __slots__ = ("backend", "codec", "pending", "prefix")

    def __init__(self, backend: FaustBackend, name: str, value_type: type[V]) -> None:
        self.backend = backend
        self.prefix = (name + SEP).encode()
        self.codec: StateCodec[V] = StateCodec(value_type)
        # this namespace's keys written in the batch, in order: :meth:`items` walks these, not the whole batch
        self.pending: dict[bytes, None] = {}

    def get(self, key: str) -> V | None:
        full = self.prefix + key.encode()
        pending = self.backend.dirty.get(full)
        if pending is not None:
            return None if pending[1] is _DELETED else pending[1]
        raw = self.backend.read(full)
        return None if raw is None else self.codec.decode(raw)

    def set(self, key: str, value: V) -> None:
        full = self.prefix + key.encode()
        self.backend.dirty[full] = (self.backend.partition, value, self.codec)
        self.pending[full] = None

    def delete(self, key: str) -> None:
        full = self.prefix + key.encode()
        backend = self.backend
        if full in backend.dirty and backend.read(full) is None:
            # Written in this batch only: neither the store nor the changelog has it, so there is nothing to
            # remove. Most of an ordered rule's buffered events and their timers are set and gone in one batch;
            # each used to cost a changelog tombstone (and its journal entry) for a key never sent.
            del backend.dirty[full]
            self.pending.pop(full, None)
            return
        backend.dirty[full] = (backend.owner_of(full), _DELETED, self.codec)
        self.pending[full] = None

    def items(self) -> Iterator[tuple[str, V]]:
        """Stored items in the store's order, the batch's pending writes applied, then keys new in the batch."""
        n, dirty, decode = len(self.prefix), self.backend.dirty, self.codec.decode
        overridden: set[bytes] = set()
        for full, raw in self.backend.stored_with_prefix(self.prefix):
            pending = dirty.get(full)
            if pending is None:
                yield full[n:].decode(), decode(raw)
                continue
            overridden.add(full)
            if pending[1] is not _DELETED:
                yield full[n:].decode(), pending[1]
        for full in list(self.pending):  # not the whole batch's writes: the cohort stage reads a namespace every step
            pending = dirty.get(full)
            if pending is not None and full not in overridden and pending[1] is not _DELETED:
                yield full[n:].decode(), pending[1]


class FaustBackend:
    """A :class:`yujing.protocols.StateBackend` over a faust Table with bytes keys and values."""

    def __init__(self, table: Any, markers: tuple[str, ...] = (), first: tuple[str, ...] = ()) -> None:
        self.table = table
        self.marker_prefixes = tuple((name + SEP).encode() for name in markers)
        self.first_prefixes = tuple(name.encode() for name in first)
        self.partition = 0
        self.dirty: dict[bytes, tuple[int, Any, StateCodec[Any]]] = {}
        self.namespaces: dict[str, FaustState[Any]] = {}
        self.outbox: list[tuple[int, bytes, bytes | None]] = []
        self.last_seq = 0
        # The memory store's keys by namespace, in the store's order, for each namespace read as a whole: the
        # cohort stage reads its counts every step, and a scan of the whole store (every dedup entry, every
        # watch) each time made the worker slow down as its state grew. Built on first use, kept by ``_put``,
        # dropped when a recovery changes the store behind it (:meth:`replay_journal`).
        self.key_index: dict[bytes, dict[bytes, None]] = {}

    def namespace(self, name: str, value_type: type[V], packed: bool = False) -> FaustState[V]:
        """The namespace ``name`` (its values are stored as bytes anyway: ``packed`` changes nothing here)."""
        ns = self.namespaces.get(name)
        if ns is None:
            ns = self.namespaces[name] = FaustState(self, name, value_type)
        return ns

    def use_partition(self, partition: int) -> None:
        self.partition = partition

    def owner_of(self, key: bytes) -> int:
        """The partition a key was written for (a delete goes to the same changelog partition)."""
        pending = self.dirty.get(key)
        if pending is not None:
            return pending[0]
        store = self._store
        index = store_key_partitions(store) if isinstance(getattr(store, "data", None), dict) else rocksdb_key_index(store)
        return index.get(key, self.partition)

    # -- store access -----------------------------------------------------
    @property
    def _store(self) -> Any:
        return self.table.data

    def read(self, key: bytes) -> bytes | None:
        store = self._store
        data = getattr(store, "data", None)
        if isinstance(data, dict):  # memory store
            return data.get(key)
        for db in rocksdb_dbs_for_key(store, key):  # rocksdb store
            value = db.get(key)
            if value is not None:
                return value
        return None

    def stored_with_prefix(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        """Keys and values in the local store (not the batch's pending writes) starting with ``prefix``.

        The rocksdb store seeks to the prefix in each partition's database and reads on while keys
        match: a restart reads its 600,000 timers without walking a million other keys, nor fetching
        each value again by key (benchmark 6). The memory store's dict is filtered, on a copy."""
        store = self._store
        data = getattr(store, "data", None)
        if isinstance(data, dict):
            if prefix.find(SEP_BYTES) != len(prefix) - 1:  # not a namespace: scan
                yield from [(k, v) for k, v in data.items() if k.startswith(prefix)]
                return
            keys = self.key_index.get(prefix)
            if keys is None:
                keys = self.key_index[prefix] = {k: None for k in data if k.startswith(prefix)}
            # a revoked partition's keys leave the store without a ``_put``: skipped here
            yield from [(k, v) for k in keys if (v := data.get(k)) is not None]
            return
        for db in rocksdb_dbs_for_actives(store):
            for key, value in db.items(from_key=prefix):
                if not key.startswith(prefix):
                    break
                yield key, value

    def _write(self, partition: int, key: bytes, value: bytes | None) -> None:
        self._put_all([(partition, key, value)])
        self.outbox.append((partition, key, value))

    def _put(self, partition: int, key: bytes, value: bytes | None) -> None:
        """Into the local store only."""
        self._put_all([(partition, key, value)])

    def _put_all(self, writes: list[tuple[int, bytes, bytes | None]]) -> None:
        """``(partition, key, value or None to delete)`` into the local store only, in order."""
        store = self._store
        data = getattr(store, "data", None)
        if isinstance(data, dict):
            where, indexes = store_key_partitions(store), self.key_index
            for partition, key, value in writes:
                if value is None:
                    data.pop(key, None)
                    where.pop(key, None)
                else:
                    data[key] = value
                    where[key] = partition
                if indexes:
                    keys = indexes.get(key[: key.find(SEP_BYTES) + 1])
                    if keys is not None:
                        if value is None:
                            keys.pop(key, None)
                        else:
                            keys[key] = None
            return
        key_index = rocksdb_key_index(store)
        for partition, key, value in writes:
            db = rocksdb_db_for_partition(store, partition)
            if value is None:
                db.delete(key)
                key_index.pop(key, None)
            else:
                db.put(key, value)
                key_index[key] = partition

    def flush(self) -> None:
        """Apply the batch's changes to the local store and queue one changelog message per changed key.

        The runner sends the queue with :meth:`send_changelog` before it acknowledges the batch.
        """
        if not self.dirty:
            return
        dirty, self.dirty = self.dirty, {}
        for ns in self.namespaces.values():
            ns.pending.clear()
        writes = [(partition, key, None if value is _DELETED else codec.encode(value)) for key, (partition, value, codec) in dirty.items()]
        self._put_all(writes)
        self.outbox.extend(writes)

    def take_outbox(self) -> list[tuple[int, bytes, bytes | None]]:
        """The changelog messages queued since the last call (partition, key, value or ``None`` to delete)."""
        outbox, self.outbox = self.outbox, []
        return outbox

    def replay_journal(self, partitions: set[int] | None = None) -> int:
        """After a restart: apply again the writes of each partition's last journaled batch (see
        :mod:`streams.journal`), completing a batch the kill cut short; they are sent again with the next
        batch's changelog. Only the ``partitions`` this worker owns (an owner elsewhere may have moved on)."""
        self.key_index.clear()  # the recovery filled the store behind it
        entries = list(self.stored_with_prefix(JOURNAL_PREFIX))  # written at once, never pending in a batch
        writes = replay(entries, partitions)
        for partition, key, value in writes:
            self._write(partition, key, value)
        return len(writes)

    def _next_seq(self) -> int:
        self.last_seq = max(self.last_seq + 1, time.time_ns())
        return self.last_seq

    async def send_changelog(self, producer: ChangelogProducer) -> int:
        """Send the queued changelog messages and wait until the broker has them all.

        The batch's journal goes first (:mod:`streams.journal`): once it is whole, a kill in what
        follows is repaired after the restart from it; before, nothing else of the batch was sent.
        The rest then goes in one more wave (two round trips a batch, not four): whatever part of
        it a kill leaves, the journal restores the whole. Within it, each partition's ``first``
        namespaces (the sinks' outbox) still come before its state, so even without the journal a
        worker would never store the dedup entry of an alert without the outbox entry that still
        has to deliver it, and its ``markers`` namespaces (the engine's per-partition clocks) come
        last in record batches of their own: each partition's log then ends with its clock
        alone, which is what lets recovery read to the end on a broker that reports the end
        offset of the last record *batch* (the tansu test broker does). Going straight to the
        producer avoids faust's table buffer, which drains one message at a time once more than
        a hundred are pending.
        """
        outbox = self.take_outbox()
        if not outbox:
            return 0
        topic = self.table.changelog_topic.get_topic_name()
        first = [m for m in outbox if m[1].startswith(self.first_prefixes)] if self.first_prefixes else []
        markers = [m for m in outbox if m[1].startswith(self.marker_prefixes)] if self.marker_prefixes else []
        either = self.first_prefixes + self.marker_prefixes
        state = [m for m in outbox if not m[1].startswith(either)] if first or markers else outbox
        # ``first`` (undelivered alerts) before the state that remembers them as raised; markers (the
        # partitions' clocks) only once the state they cover is stored.
        journal = journal_messages(outbox, self._next_seq())
        # Kept locally too, as the changelog has them: a later recovery on this store (a rebalance) must
        # find the newest journal, not one read at an earlier recovery, whose writes are since overwritten.
        for partition, key, value in journal:
            self._put(partition, key, value)
        waves: list[list[Any]] = [await self._send_until_stored(producer, topic, journal)]
        if first or state or markers:
            waves.append(await self._send_until_stored(producer, topic, first + state, markers))
        self._persisted(topic, waves)
        return len(outbox)

    def _persisted(self, topic: str, waves: list[list[Any]]) -> None:
        """Tell a persistent (rocksdb) store how far the changelog it holds goes: a restart on the same disk then
        reads only the changelog written after (faust records this itself only for what it sends). The
        memory store keeps nothing across restarts and ignores it.

        The offset recorded for a partition is one before the first message of the last wave sent to it, not its
        last message: a broker that reports a partition's end as the start of its last record batch (tansu) would
        otherwise see a store ahead of the log and stop the restart (faust's ``ConsistencyError``; seen when a
        partition's last wave held three messages). A wave is sent only once the one before is acknowledged, so
        no batch spans two waves and the last batch starts at or after its wave's first message. The restart reads
        that wave again: absolute values, harmless.
        """
        store = self._store
        if isinstance(getattr(store, "data", None), dict):
            return
        first_of_last_wave: dict[int, int] = {}
        for acks in waves:  # each ack a RecordMetadata; later waves overwrite earlier ones
            first_in_wave: dict[int, int] = {}
            for meta in acks:
                first_in_wave[meta.partition] = min(first_in_wave.get(meta.partition, meta.offset), meta.offset)
            first_of_last_wave.update(first_in_wave)
        for partition, offset in first_of_last_wave.items():
            store.set_persisted_offset(TP(topic, partition), offset - 1)

    async def _send_until_stored(self, producer: ChangelogProducer, topic: str, wave: list[Write], tail: Sequence[Write] = ()) -> list[Any]:
        """Send a wave, again and again while the broker is away (a changelog message sent twice is harmless:
        the last value of a key wins). The batch is not acknowledged meanwhile, so nothing is lost."""
        backoff = 0.5
        while True:
            try:
                return await producer.send_wave(topic, wave, tail)
            except (KafkaError, OSError) as exc:  # the broker gone, restarting, or without the topic yet
                log.warning("changelog send failed (%s); again in %.1f s", exc.__class__.__name__, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 10.0)
