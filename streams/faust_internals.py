"""What the worker needs of faust and aiokafka beyond their public API, in one module.

faust-streaming and aiokafka are pinned to exact versions (pyproject.toml);
every private attribute used is listed in :data:`PRIVATE_ACCESSES`, and
``tests/unit/test_faust_internals.py`` checks each against the installed
versions, so an upgrade that moves one fails loudly there.

**Whole fetches in.**
faust delivers a fetch one message at a time: its drain loop wraps every
message in a ``Message``, awaits a ``wait_first`` (two tasks) to put it on the
topic's queue, the agent's stream takes it off again, and every message is
acknowledged and tracked one by one. Profiled on the three peer rules
(py-spy, 2026-12-04), that per-message path was 42 % of the worker's event
loop, the engine 17 %.

:func:`read_in_batches` replaces the consumer's drain loop (the one method the
Fetcher service runs) with one that takes a fetch (``broker_max_poll_records``
records at most) and hands the records of the input topics to ``on_batch`` as
:class:`~streams.pipeline.Record` tuples in one call, in the order the broker
returned them (each partition's records in offset order). Records of any
other topic (table changelogs during recovery, standbys) go through faust's
own per-message route, as before.

Input records are never acknowledged to faust: what the worker has processed
is the input positions kept in its state (:mod:`streams.positions`), and the
worker commits them to the group itself (:func:`commit_offsets`) after the
state that covers them is in the changelog. A fetch made before a rebalance
(the generation changed, or the flow stopped) is not processed: faust seeks
the partitions again, and the positions skip what was seen.

**Changelog waves out.** :class:`BatchProducer` sends a wave of changelog
messages as one record batch per partition (aiokafka's ``create_batch`` and
``send_batch``) instead of one ``send`` (a future, an accumulator lookup) per
message: the changelog sends were a third of the worker's loop once the
fetch path was gone.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from faust.types import TP

from streams.pipeline import Record

__all__ = ["PRIVATE_ACCESSES", "BatchProducer", "commit_offsets", "committed_offset", "fair_slices", "read_in_batches"]

log = logging.getLogger(__name__)

#: ``(owner, attribute)`` for every private attribute used here; the unit test checks that each exists.
PRIVATE_ACCESSES: tuple[tuple[str, str], ...] = (
    ("faust.transport.consumer.Consumer", "_drain_messages"),  # replaced per consumer instance
    ("faust.transport.consumer.Consumer", "_wait_next_records"),  # fetch + flow control, as faust's getmany
    ("faust.transport.consumer.Consumer", "_to_message"),  # non-input records, as faust's getmany
    ("faust.transport.consumer.Consumer", "_commit_offsets"),  # commit + _committed_offset, as faust's own commit
    ("faust.transport.consumer.Consumer", "_committed_offset"),  # instance attribute
    ("faust.transport.consumer.Consumer", "_read_offset"),  # instance attribute (the stuck watchdog reads it)
    ("faust.transport.consumer.Consumer", "_buffered_partitions"),  # instance attribute
    ("mode.services.Service", "_stopped"),  # instance attribute
    ("faust.transport.drivers.aiokafka.Producer", "_ensure_producer"),  # the aiokafka producer under faust's
)

OnBatch = Callable[[list[Record]], Awaitable[None]]


def committed_offset(consumer: Any, topic: str, partition: int) -> int | None:
    """The offset the consumer group has committed for a partition, as faust last saw it (``None``: unknown)."""
    return consumer._committed_offset.get(TP(topic, partition))


async def commit_offsets(consumer: Any, offsets: Mapping[tuple[str, int], int]) -> bool:
    """Commit ``{(topic, partition): next offset}`` for the partitions still assigned (faust's own commit path:
    the producer flushed first, then the group commit; revoked partitions are left to their new owner)."""
    if not offsets:
        return False
    return bool(await consumer._commit_offsets({TP(topic, partition): offset for (topic, partition), offset in offsets.items()}))


def read_in_batches(
    app: Any,
    is_input: Callable[[str], bool],
    on_batch: OnBatch,
    batch_max: int = 1000,
    timeout: float = 1.0,
    ready: Callable[[], bool] = lambda: True,
) -> None:
    """Make ``app``'s consumer hand each fetch's input records to ``on_batch`` in one call (see the module).

    Input records fetched while ``ready()`` is false (the state not recovered yet: faust fetches changelogs
    with the same consumer) are not processed; faust seeks the inputs once recovery completes, and they are
    read again. Processed before the runner knew which partitions it owns, the first partition read would
    have set the cohort stage's time for all of them, its windows closed before the others' records came."""
    consumer = app.consumer
    if getattr(consumer, "reads_in_batches", False):
        return

    async def drain(fetcher: Any) -> None:
        await _drain_in_batches(app, consumer, fetcher, is_input, on_batch, batch_max, timeout, ready)

    consumer._drain_messages = drain
    consumer.reads_in_batches = True


async def _drain_in_batches(
    app: Any,
    consumer: Any,
    fetcher: Any,
    is_input: Callable[[str], bool],
    on_batch: OnBatch,
    batch_max: int,
    timeout: float,
    ready: Callable[[], bool],
) -> None:
    consumer_stopped = consumer._stopped.is_set
    fetcher_stopped = fetcher._stopped.is_set
    read_offset = consumer._read_offset
    try:
        while not (consumer_stopped() or fetcher_stopped()):
            await consumer.sleep(0)  # as faust's loop: a fetch that returns at once still lets the loop run
            fetched, active = await consumer._wait_next_records(timeout)
            generation = app.consumer_generation_id
            if not fetched or consumer.should_stop:
                continue
            if not consumer.flow_active:  # a rebalance began while fetching: faust seeks, and so do we
                try:
                    await consumer.perform_seek()
                except Exception as exc:
                    log.warning("seek while the flow is stopped failed: %r", exc)
                continue
            buffered = consumer._buffered_partitions
            now = time.time()
            inputs: list[list[Record]] = []
            for tp, records in fetched.items():
                if not records or (active is not None and tp not in active and tp not in buffered):
                    continue
                if is_input(tp.topic):
                    if not ready():
                        continue  # read again after recovery (faust seeks then)
                    topic, partition = tp.topic, tp.partition
                    inputs.append([Record(topic, partition, r.offset, r.key, r.value, now) for r in records])
                    read_offset[tp] = records[-1].offset
                else:
                    await _deliver_one_by_one(consumer, tp, records)
            for batch in fair_slices(inputs, batch_max):
                if app.consumer_generation_id != generation or not consumer.flow_active:
                    break  # a rebalance: faust seeks, the positions skip what was already processed
                await on_batch(batch)
    except consumer.consumer_stopped_errors:
        if app.should_stop:
            log.info("the broker stopped the consumer while shutting down")
            return
        raise


class BatchProducer:
    """Sends changelog waves through the aiokafka producer under a faust app's producer, one record batch
    per partition (more when a wave outgrows ``producer_max_batch_size``): see :meth:`send_wave`."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def send_wave(self, topic: str, wave: Sequence[tuple[int, bytes, bytes | None]]) -> list[Any]:
        """Send ``(partition, key, value)`` messages, each partition's in order; returns, once the broker has them
        all, one ``RecordMetadata`` per record batch (its ``offset``: the batch's first message)."""
        producer = self.app.producer._ensure_producer()
        by_partition: dict[int, list[tuple[bytes, bytes | None]]] = {}
        for partition, key, value in wave:
            by_partition.setdefault(partition, []).append((key, value))
        sent = []
        for partition, messages in by_partition.items():
            batch = producer.create_batch()
            for key, value in messages:
                if batch.append(key=key, value=value, timestamp=None) is None:  # full: send it, start the next
                    sent.append(await producer.send_batch(batch, topic, partition=partition))
                    batch = producer.create_batch()
                    batch.append(key=key, value=value, timestamp=None)  # the first message always fits
            sent.append(await producer.send_batch(batch, topic, partition=partition))
        return list(await asyncio.gather(*sent))


def fair_slices(runs: list[list[Record]], batch_max: int) -> list[list[Record]]:
    """A fetch's records (one run per partition) as batches of about ``batch_max``, each holding the same share
    of every partition: the streams of a partition advance side by side, as the watermark needs, and no
    partition waits behind another's thousands of records.

    >>> runs = [[("orders", 0, o) for o in range(4)], [("billing", 0, o) for o in range(2)]]
    >>> [[(t[0][0], t[2]) for t in b] for b in fair_slices(runs, 3)]
    [[('o', 0), ('o', 1), ('b', 0)], [('o', 2), ('o', 3), ('b', 1)]]
    """
    total = sum(len(run) for run in runs)
    if total <= batch_max:
        return [[record for run in runs for record in run]] if total else []
    parts = -(-total // batch_max)
    batches: list[list[Record]] = [[] for _ in range(parts)]
    for run in runs:
        n = len(run)
        for i, batch in enumerate(batches):
            batch.extend(run[i * n // parts : (i + 1) * n // parts])
    return [batch for batch in batches if batch]


async def _deliver_one_by_one(consumer: Any, tp: TP, records: list[Any]) -> None:
    """Records of a non-input topic (a changelog) through faust's own route, as its drain loop delivers them."""
    callback = consumer.callback
    to_message = consumer._to_message
    for record in records:
        await consumer.wait_first(callback(to_message(tp, record)), consumer.suspend_flow.wait())
        consumer._read_offset[tp] = record.offset
