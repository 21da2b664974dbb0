"""The worker's batch loop, without faust: admit, process, commit, recover.

:mod:`streams.worker` wires a :class:`WorkerLoop` to faust's consumer, producer and
table; the crash-model tests (``tests/unit/test_crash_recovery.py``) wire the same
class to in-memory stand-ins and kill its producer mid-changelog. One batch:

1. **admit** — each record is checked against the input position kept in state
   (:class:`~streams.positions.InputPositions`): redeliveries are skipped, a gap
   makes the partition be sought back. Records of the cohort topic are set aside.
2. **process** — the pipeline decodes and runs the engine over the input records;
   the cohort topic's records go to the engine's cohort stage (``Engine.accept``).
3. **commit** — the batch's cohort records and marks are sent to the cohort topic,
   alerts delivered to the sinks, dead letters published, the state committed and
   its changelog sent (the positions ride in the same changelog, after the state
   they cover); then the partitions to seek back are sought. The worker hands a
   fetch over in slices and commits once after its last (``persist=False`` before):
   a key written by several slices goes to the changelog once.

A crash anywhere leaves a changelog that ends in a prefix of a batch's writes;
:meth:`WorkerLoop.recover` completes that batch from its journal, rebuilds the
engine's timers and sink outbox from state, and the input is read again from where
the state ends: nothing lost, nothing counted twice.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from streams.decode import DeadLetter
from streams.engine import Engine
from streams.engine.exchange import CohortMessage, decode_message, encode_message
from streams.faust_state import FaustBackend
from streams.journal import Write
from streams.metrics import PipelineMetrics
from streams.pipeline import Pipeline, Record
from streams.positions import InputPositions

__all__ = ["Recovered", "WaveProducer", "WorkerLoop"]

log = logging.getLogger(__name__)


class WaveProducer(Protocol):
    """Sends messages to a topic as one wave, returning once every one is delivered
    (:class:`streams.faust_internals.BatchProducer` over faust's producer)."""

    async def send_wave(self, topic: str, wave: Sequence[Write], tail: Sequence[Write] = ()) -> Any: ...


#: ``seek(topic, partition, offset)``: read the partition again from ``offset``.
Seek = Callable[[str, int, int], Awaitable[None]]
#: ``send_dead(letter)``: publish a record that could not be decoded to its dead-letter topic.
SendDead = Callable[[DeadLetter], Awaitable[None]]
#: ``offload(fn, arg)``: run blocking sink writes somewhere that does not block the loop (an executor).
Offload = Callable[[Callable[[Any], Any], Any], Awaitable[Any]]


async def _inline(fn: Callable[[Any], Any], arg: Any) -> Any:
    return fn(arg)


@dataclass(frozen=True)
class Recovered:
    """What :meth:`WorkerLoop.recover` found in state."""

    journal_writes: int  #: writes of a batch a kill cut short, applied
    timers: int  #: timers pending
    undelivered: int  #: sink items queued again


class WorkerLoop:
    """One worker's batch loop over injected parts: the engine's pipeline and state, a producer for the
    changelog and the cohort topic, a ``seek`` on the consumer, and a dead-letter publisher.

    Every entry point (:meth:`handle`, :meth:`persist`, :meth:`tick`, :meth:`recover`, and whatever the runner
    does between batches, under :attr:`lock`) keeps one batch whole: its alerts, dead letters and cohort messages
    are sent before the next batch is admitted, and its state and positions with the next commit (at once unless
    it was handled with ``persist=False``).

    Wiring, as :func:`streams.worker.build_worker_app` does it (the crash-model tests pass in-memory stand-ins)::

        loop = WorkerLoop(pipeline, backend, InputPositions(backend, probe), BatchProducer(app),
                          seek=seek_on_faust_consumer, send_dead=publish_to_dlq, cohort_topic="yujing-cohort",
                          offload=run_in_executor)
        loop.recover(owned_partitions)      # after the table's changelog recovery
        await loop.handle(records, persist=False)   # each slice of a fetch
        await loop.persist()                        # after its last
    """

    def __init__(
        self,
        pipeline: Pipeline,
        backend: FaustBackend,
        positions: InputPositions,
        producer: WaveProducer,
        seek: Seek,
        send_dead: SendDead,
        *,
        cohort_topic: str = "",
        offload: Offload = _inline,
        metrics: PipelineMetrics | None = None,
    ) -> None:
        self.pipeline = pipeline
        self.engine: Engine = pipeline.engine
        self.backend = backend
        self.positions = positions
        self.producer = producer
        self.seek = seek
        self.send_dead = send_dead
        self.cohort_topic = cohort_topic
        self.offload = offload
        self.metrics = metrics
        self.lock = asyncio.Lock()

    # -- one batch --------------------------------------------------------------------------------------------

    async def handle(self, records: list[Record], persist: bool = True) -> None:
        """Admit, process and deliver one batch of records (input and cohort topic mixed), commit its state
        unless ``persist`` is false, then seek back the partitions whose records did not follow on from the
        stored positions.

        ``persist=False`` leaves the batch's state (and its positions) in the write buffer, for the next commit
        to send with the next batches' (:meth:`persist`): the slices of one fetch, as Kafka Streams commits at
        an interval rather than per record. Its alerts are delivered now all the same; a crash before the
        commit reads the batch again from the positions the state holds, and raises the same alerts, with the
        same ids."""
        async with self.lock:
            inputs, exchanged, seeks = await self.admit(records)
            alerts, dead = self.process(inputs, exchanged)
            self.positions.store()
            await self.deliver(alerts, dead)
            if persist:
                await self.persist_unlocked()
            await self.rewind(seeks)
            self._count_positions()

    async def persist(self) -> None:
        """Commit the state of the batches handled with ``persist=False`` and send its changelog."""
        async with self.lock:
            await self.persist_unlocked()

    async def persist_unlocked(self) -> None:
        """:meth:`persist`, for a caller that holds :attr:`lock`."""
        self.pipeline.commit()
        await self.backend.send_changelog(self.producer)

    async def admit(self, records: list[Record]) -> tuple[list[Record], list[Record], dict[tuple[str, int], int]]:
        """The batch's input records and cohort-topic records that follow on from the stored positions, and
        ``{(topic, partition): offset}`` to seek back."""
        admitted, seeks = await self.positions.admit(records)
        if len(admitted) < len(records):
            records = [records[i] for i in admitted]
        if not self.cohort_topic:
            return records, [], seeks
        exchanged = [r for r in records if r.topic == self.cohort_topic]
        if exchanged:
            records = [r for r in records if r.topic != self.cohort_topic]
        return records, exchanged, seeks

    def process(self, records: list[Record], exchanged: Sequence[Record] = ()) -> tuple[list[Any], list[DeadLetter]]:
        """The engine over the input records, then the cohort stage over the cohort topic's records:
        the alerts raised and the records that could not be decoded."""
        alerts, dead = self.pipeline.process(records)
        if exchanged:
            alerts += self.engine.accept(self._cohort_messages(exchanged))
        return alerts, dead

    async def commit(self, alerts: list[Any], dead: Sequence[DeadLetter]) -> None:
        """Send the batch's cohort messages, deliver its alerts and dead letters, commit the state and send
        its changelog, in that order: what the state remembers as done is done before it is remembered."""
        await self.deliver(alerts, dead)
        await self.persist_unlocked()

    async def deliver(self, alerts: list[Any], dead: Sequence[DeadLetter]) -> None:
        """Send the batch's cohort messages, deliver its alerts and dead letters (before the state that
        remembers them as done)."""
        messages = self.engine.take_exchange()
        if messages:  # delivered before the state that numbered them (a crash re-sends; the cohort stage dedups)
            await self.producer.send_wave(self.cohort_topic, [(q, b"", encode_message(m)) for q, m in messages])
        if alerts or self.pipeline.has_scores():
            await self.offload(self.pipeline.deliver, alerts)
        for letter in dead:
            await self.send_dead(letter)

    async def rewind(self, seeks: dict[tuple[str, int], int]) -> None:
        """Seek each partition back to its offset (one revoked meanwhile is its new owner's to read)."""
        for (topic, partition), offset in seeks.items():
            try:
                await self.seek(topic, partition, offset)
            except Exception:
                log.warning("could not seek %s[%d] back to %d", topic, partition, offset, exc_info=True)

    # -- between batches --------------------------------------------------------------------------------------

    async def tick(self, behind: set[tuple[int, str]] | None = None, fetched: dict[tuple[str, int], int] | None = None) -> None:
        """Wall-clock work between batches (call under :attr:`lock`): the partitions ``behind`` (with records
        left to read, which therefore never count as idle) told to the engine, what idleness and timers
        raise committed, partitions whose re-fetch never came sought again, and so are those whose consumer
        position (``fetched``) has stayed beyond what was processed (:meth:`InputPositions.lost`)."""
        if behind is not None:
            self.engine.set_backlog(behind)
        await self.commit(self.pipeline.tick(), [])
        seeks = self.positions.overdue()
        if fetched:
            seeks.update(self.positions.lost(fetched))
        await self.rewind(seeks)

    def recover(self, owned: Iterable[int]) -> Recovered:
        """After the table is rebuilt from its changelog (a start, a rebalance): complete the batch a kill cut
        short, rebuild timers and the sink outbox from state for the ``owned`` partitions, and forget cached
        positions (the state decides what to read next)."""
        owned = set(owned)
        repaired = self.backend.replay_journal(owned)
        timers = self.engine.recover()
        self.engine.expect_partitions(owned)
        self.positions.forget()
        undelivered = self.pipeline.recover()
        return Recovered(repaired, timers, undelivered)

    async def close_input(self) -> None:
        """The end of a finite input (tests, backfills): fire every timer up to the last event and commit."""
        async with self.lock:
            await self.commit(self.engine.close_input(), [])

    def _cohort_messages(self, records: Sequence[Record]) -> list[tuple[int, CohortMessage]]:
        out = []
        for record in records:
            try:
                out.append((record.partition, decode_message(record.value)))
            except Exception:  # our own internal format: only a foreign writer could put this there
                log.error("%s[%d]@%d is not a cohort message; skipped", record.topic, record.partition, record.offset)
        return out

    def _count_positions(self) -> None:
        if self.metrics is not None:
            self.metrics.input_positions(*self.positions.take_counts())
