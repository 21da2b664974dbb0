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
the partitions again, and the positions skip what was seen. Input fetched and
not processed for any other reason (the state still recovering, a partition
paused) has its partition sought back to it (:func:`read_again`): faust's own
seek may already lie behind it.

**Changelog waves out.** :class:`BatchProducer` sends a wave of changelog
messages as one record batch per partition (aiokafka's ``create_batch`` and
``send_batch``) instead of one ``send`` (a future, an accumulator lookup) per
message: the changelog sends were a third of the worker's loop once the
fetch path was gone. A wave's ``tail`` (the engine's clocks) follows each
partition's messages in record batches of its own; the producer keeps one
request in flight per broker (checked by a unit test against aiokafka's
source), so a partition's batches land in the order sent.

**Table stores.** The state backend (:mod:`streams.faust_state`) reads and
writes faust's table store directly, a batch's writes at once, not through
the table's per-key ``__setitem__`` (an event and a changelog message each):
the memory store's key → partition map, the rocksdb store's per-partition
databases and key index (:func:`store_key_partitions` and the ``rocksdb_*``
functions).

**How long a fetch may wait.** faust creates its aiokafka consumer with
``fetch_max_wait_ms=1500``, fixed. Kafka answers a fetch as soon as any of
its partitions has data, so the wait only matters when input is idle. A
broker that holds a fetch until the wait is over while records arrive (tansu
does) delays every record by up to that: produce → consume at 4,000 msgs/s
measured p50 288 ms and p99 778 ms against tansu with 1.5 s, and 17 and 42 ms
with 50 ms. :func:`read_in_batches` sets the consumer's fetcher to
``fetch_max_wait`` once it exists.

**A group error nobody takes.** When a rebalance fails on the Kafka client's side (the group leader's
assignment raised: in CI, faust's assignor met metadata that still missed a topic just after a broker
restart), aiokafka aborts the fetcher's wait for the assignment with the error and its group coordinator then
waits, with no timeout, for the consumer to take the error (``check_errors``, which only aiokafka's own
``getmany`` calls; faust's fetch goes around it). The worker either crashed (the error reached faust's Fetcher)
or stood still for good (no fetch was waiting, so no one ever took it). :func:`take_group_error` takes it on
the consumer's thread, so the coordinator joins the group again; the drain calls it when a fetch fails, and
the stuck-flow watchdog (:mod:`streams.stuck`) on every check.

**A stalled consumer's dump.** :func:`describe_consumer` reads faust's and
the Kafka client's bookkeeping for a worker whose input stopped.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, MutableMapping, Sequence
from typing import Any

from aiokafka import errors as kafka_errors
from faust.types import TP

from streams.journal import Write
from streams.pipeline import Record

__all__ = [
    "PRIVATE_ACCESSES",
    "BatchProducer",
    "commit_offsets",
    "committed_offset",
    "describe_consumer",
    "fair_slices",
    "fetch_positions",
    "in_progress",
    "read_again",
    "read_in_batches",
    "rocksdb_db_for_partition",
    "rocksdb_dbs_for_actives",
    "rocksdb_dbs_for_key",
    "rocksdb_key_index",
    "run_after_faust_seeks",
    "seek_in_consumer_thread",
    "set_fetch_max_wait",
    "store_key_partitions",
    "take_group_error",
]

log = logging.getLogger(__name__)

#: ``(owner, attribute)`` for every private attribute used here; the unit test checks that each exists.
PRIVATE_ACCESSES: tuple[tuple[str, str], ...] = (
    ("faust.transport.consumer.Consumer", "_drain_messages"),  # replaced per consumer instance
    ("faust.transport.consumer.Consumer", "perform_seek"),  # public, but wrapped per instance (run_after_faust_seeks)
    ("faust.transport.consumer.Consumer", "_wait_next_records"),  # fetch + flow control, as faust's getmany
    ("faust.transport.consumer.Consumer", "_to_message"),  # non-input records, as faust's getmany
    ("faust.transport.consumer.Consumer", "_commit_offsets"),  # commit + _committed_offset, as faust's own commit
    ("faust.transport.consumer.Consumer", "_committed_offset"),  # instance attribute
    ("faust.transport.consumer.Consumer", "_read_offset"),  # instance attribute (the stuck watchdog reads it)
    ("faust.transport.consumer.Consumer", "_buffered_partitions"),  # instance attribute
    ("mode.services.Service", "_stopped"),  # instance attribute
    ("faust.transport.drivers.aiokafka.Producer", "_ensure_producer"),  # the aiokafka producer under faust's
    # table stores (streams/faust_state.py writes a batch into them at once)
    ("faust.stores.memory.Store", "_key_partition"),  # instance attribute
    ("faust.stores.rocksdb.Store", "_key_index"),  # instance attribute
    ("faust.stores.rocksdb.Store", "_dbs_for_key"),
    ("faust.stores.rocksdb.Store", "_dbs_for_actives"),
    ("faust.stores.rocksdb.Store", "_db_for_partition"),
    # describe_consumer (a stalled worker's dump)
    ("faust.transport.consumer.Consumer", "_unacked_messages"),  # instance attribute
    ("faust.transport.consumer.Consumer", "_paused_partitions"),  # instance attribute
    ("faust.transport.consumer.Consumer", "_active_partitions"),  # instance attribute
    ("faust.transport.consumer.Consumer", "_acked"),  # instance attribute
    ("faust.transport.drivers.aiokafka.Consumer", "_thread"),  # instance attribute
    ("faust.transport.drivers.aiokafka.AIOKafkaConsumerThread", "_consumer"),  # instance attribute
    ("aiokafka.consumer.consumer.AIOKafkaConsumer", "_coordinator"),  # instance attribute
    ("aiokafka.consumer.consumer.AIOKafkaConsumer", "_subscription"),  # instance attribute
    ("aiokafka.consumer.group_coordinator.GroupCoordinator", "_rejoin_needed_fut"),  # instance attribute
    ("aiokafka.consumer.group_coordinator.GroupCoordinator", "_performed_join_prepare"),  # instance attribute
    ("aiokafka.consumer.group_coordinator.GroupCoordinator", "_coordination_task"),  # instance attribute
    # take_group_error: the error the coordinator waits for the consumer to take
    ("aiokafka.consumer.group_coordinator.GroupCoordinator", "_pending_exception"),  # instance attribute
    ("aiokafka.consumer.group_coordinator.GroupCoordinator", "check_errors"),
    ("aiokafka.consumer.subscription_state.TopicPartitionState", "_position"),  # instance attribute
    ("faust.transport.conductor.Conductor", "_tp_index"),  # instance attribute
    # how long a fetch may wait (faust fixes it at 1.5 s): the aiokafka consumer's fetcher, read per fetch request
    ("aiokafka.consumer.consumer.AIOKafkaConsumer", "_fetcher"),  # instance attribute, created by start()
    ("aiokafka.consumer.fetcher.Fetcher", "_fetch_max_wait_ms"),  # instance attribute
)

OnBatch = Callable[[list[Record]], Awaitable[None]]
OnFetchEnd = Callable[[], Awaitable[None]]


async def _nothing() -> None:
    return None


def committed_offset(consumer: Any, topic: str, partition: int) -> int | None:
    """The offset the consumer group has committed for a partition, as faust last saw it (``None``: unknown)."""
    return consumer._committed_offset.get(TP(topic, partition))


def run_after_faust_seeks(consumer: Any, hook: Callable[[], Awaitable[None]]) -> None:
    """Run ``hook`` after each of faust's own seeks of a rebalance (to the committed offsets), before its flow
    resumes: wraps the consumer's ``perform_seek`` once per consumer instance (later calls do nothing)."""
    if getattr(consumer, "yujing_seek_hook", None) is not None:
        return
    faust_seek = consumer.perform_seek

    async def perform_seek() -> None:
        await faust_seek()
        await hook()

    consumer.perform_seek = perform_seek
    consumer.yujing_seek_hook = hook


def _first_offsets(batches: Sequence[Sequence[Record]], into: dict[TP, int]) -> None:
    """Each partition's first offset in ``batches`` (records not handed over), added to ``into``."""
    for batch in batches:
        for record in batch:
            tp = TP(record.topic, record.partition)
            if tp not in into or record.offset < into[tp]:
                into[tp] = record.offset


async def read_again(consumer: Any, offsets: Mapping[TP, int]) -> None:
    """Seek each partition back to the first record fetched and not processed (one revoked meanwhile is its new
    owner's to read: its seek fails and is let go).

    The consumer's fetch position is past such records, and faust's seek of a rebalance may already have been
    made: a fetch returned while the state was still recovering, between faust's seek (and the worker's own, to
    where the state ends) and the end of the recovery, was dropped here and never read again. A partition with
    nothing more to come then stood still for good (the positions notice a gap only at the next record): seen
    in the rocksdb restart test once seeks went through the consumer thread, and with a shorter fetch wait."""
    for tp, offset in offsets.items():
        try:
            await seek_in_consumer_thread(consumer, tp.topic, tp.partition, offset)
        except Exception as exc:
            log.info("%s[%d]: not read again from %d: %r", tp.topic, tp.partition, offset, exc)


async def seek_in_consumer_thread(consumer: Any, topic: str, partition: int, offset: int) -> None:
    """Seek an input partition back to ``offset`` from the aiokafka consumer's own thread (faust's ``seek_wait``
    queues it on that thread's method queue, as faust's own seek to the committed offsets does).

    faust's ``Consumer.seek`` calls aiokafka's from the caller's thread instead: aiokafka then deletes the
    partition's fetched records while the consumer thread may be inside ``fetched_records`` (which lists the
    keys, then indexes them). In CI that ``KeyError`` killed faust's Fetcher service right after a worker sought
    to where its state ends, and the worker read nothing more."""
    await consumer.seek_wait({TP(topic, partition): offset})


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
    on_fetch_end: OnFetchEnd = _nothing,
    fetch_max_wait: float | None = None,
) -> None:
    """Make ``app``'s consumer hand each fetch's input records to ``on_batch`` in one call (see the module),
    cut into fair slices of about ``batch_max``, and await ``on_fetch_end`` after a fetch's last slice (also
    when a rebalance stops the slices early). ``fetch_max_wait``: seconds the broker may hold a fetch for data
    to arrive (``None``: faust's 1.5 s).

    Input records fetched while ``ready()`` is false (the state not recovered yet: faust fetches changelogs
    with the same consumer) are not processed; their partitions are sought back to them (:func:`read_again`),
    since faust's own seek at the end of the recovery may already have been made. Processed before the runner
    knew which partitions it owns, the first partition read would have set the cohort stage's time for all of
    them, its windows closed before the others' records came."""
    consumer = app.consumer
    if getattr(consumer, "reads_in_batches", False):
        return

    async def drain(fetcher: Any) -> None:
        await _drain_in_batches(app, consumer, fetcher, is_input, on_batch, batch_max, timeout, ready, on_fetch_end, fetch_max_wait)

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
    on_fetch_end: OnFetchEnd = _nothing,
    fetch_max_wait: float | None = None,
) -> None:
    consumer_stopped = consumer._stopped.is_set
    fetcher_stopped = fetcher._stopped.is_set
    read_offset = consumer._read_offset
    wait_set = fetch_max_wait is None
    try:
        while not (consumer_stopped() or fetcher_stopped()):
            await consumer.sleep(0)  # as faust's loop: a fetch that returns at once still lets the loop run
            if not wait_set:  # the aiokafka consumer's fetcher exists once it has started
                wait_set = set_fetch_max_wait(consumer, fetch_max_wait)  # type: ignore[arg-type]
            fetched, active = await _next_records(consumer, timeout)
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
            unread: dict[TP, int] = {}
            for tp, records in fetched.items():
                if not records:
                    continue
                if active is not None and tp not in active and tp not in buffered:  # paused meanwhile
                    if is_input(tp.topic):
                        unread[tp] = records[0].offset
                    continue
                if is_input(tp.topic):
                    if not ready():  # not processed before the state is recovered: read again
                        unread[tp] = records[0].offset
                        continue
                    topic, partition = tp.topic, tp.partition
                    inputs.append([Record(topic, partition, r.offset, r.key, r.value, now) for r in records])
                    read_offset[tp] = records[-1].offset
                else:
                    await _deliver_one_by_one(consumer, tp, records)
            handled = False
            slices = fair_slices(inputs, batch_max)
            consumer.yujing_in_progress = {(records[0].topic, records[0].partition) for records in inputs}
            try:
                for i, batch in enumerate(slices):
                    if app.consumer_generation_id != generation or not consumer.flow_active:
                        _first_offsets(slices[i:], unread)  # a rebalance overtook the fetch: its rest is read again
                        break
                    handled = True
                    await on_batch(batch)
            finally:
                consumer.yujing_in_progress = set()
            if unread:
                await read_again(consumer, unread)
            if handled:
                await on_fetch_end()
    except consumer.consumer_stopped_errors:
        if app.should_stop:
            log.info("the broker stopped the consumer while shutting down")
            return
        raise


#: Seconds the drain waits after a fetch a group error aborted, as aiokafka's coordinator backs off.
GROUP_ERROR_BACKOFF = 0.5

#: Group errors a worker must not carry on after: its configuration or rights are wrong, and joining again
#: cannot mend that.
FATAL_GROUP_ERRORS: tuple[type[BaseException], ...] = (
    kafka_errors.GroupAuthorizationFailedError,
    kafka_errors.TopicAuthorizationFailedError,
    kafka_errors.InconsistentGroupProtocolError,
    kafka_errors.InvalidSessionTimeoutError,
    kafka_errors.InvalidGroupIdError,
)


async def take_group_error(consumer: Any) -> BaseException | None:
    """Take the error the Kafka client's group coordinator is waiting for the consumer to take (see the
    module), on the consumer's own thread; returns it, or ``None`` when none is waiting (or the coordinator
    has died, which is faust's to report). The coordinator then joins the group again.

    A fatal error (:data:`FATAL_GROUP_ERRORS`) is raised instead, as aiokafka's own ``getmany`` would."""
    client = _kafka_client(consumer)
    coordinator = getattr(client, "_coordinator", None)
    if coordinator is None or getattr(coordinator, "_pending_exception", None) is None:
        return None

    def take() -> BaseException | None:
        if coordinator._coordination_task.done() or coordinator._pending_exception is None:
            return None
        try:
            coordinator.check_errors()
        except Exception as exc:  # check_errors raises what it hands over
            # counted here, on the consumer's thread as it is taken: a drain whose fetch this error aborted
            # then knows it was taken, whoever took it
            consumer.yujing_group_errors_taken = getattr(consumer, "yujing_group_errors_taken", 0) + 1
            return exc
        return None

    error = await consumer._thread.call_thread(take)
    if isinstance(error, FATAL_GROUP_ERRORS):
        raise error
    if error is not None:
        log.warning("the consumer group failed (%r): joining it again", error)
    return error


async def _next_records(consumer: Any, timeout: float) -> tuple[Any, Any]:
    """faust's fetch (records and the active partitions); a fetch aborted by a group error (see the module)
    is an empty one, once the error is taken."""
    taken = getattr(consumer, "yujing_group_errors_taken", 0)
    try:
        return await consumer._wait_next_records(timeout)
    except consumer.consumer_stopped_errors:
        raise
    except kafka_errors.KafkaError:
        if await take_group_error(consumer) is None and getattr(consumer, "yujing_group_errors_taken", 0) == taken:
            raise  # not a group error (none waiting, and none taken by the watchdog meanwhile)
        await consumer.sleep(GROUP_ERROR_BACKOFF)
        return {}, None


def in_progress(consumer: Any) -> set[tuple[str, int]]:
    """The input partitions of the fetch the drain is handing over slice by slice (empty between fetches): their
    records fetched and not processed yet are on their way, not lost (a catch-up's fetch takes seconds)."""
    return getattr(consumer, "yujing_in_progress", set())


def _kafka_client(consumer: Any) -> Any:
    """The aiokafka consumer under a faust consumer (``None`` before it has started)."""
    return getattr(getattr(consumer, "_thread", None), "_consumer", None)


def _assignment(client: Any) -> Any:
    """The aiokafka client's current assignment (its subscription state per partition), ``None`` without one."""
    subscription = getattr(getattr(client, "_subscription", None), "subscription", None)
    return getattr(subscription, "assignment", None)


def set_fetch_max_wait(consumer: Any, seconds: float) -> bool:
    """Let the broker hold each of ``consumer``'s fetches at most ``seconds`` for data to arrive (the next request
    on); ``False`` while its aiokafka consumer has no fetcher yet (not started)."""
    client = _kafka_client(consumer)
    fetcher = getattr(client, "_fetcher", None)
    if fetcher is None:
        return False
    fetcher._fetch_max_wait_ms = max(1, round(seconds * 1000))
    return True


class BatchProducer:
    """Sends changelog waves through the aiokafka producer under a faust app's producer, one record batch
    per partition (more when a wave outgrows ``producer_max_batch_size``): see :meth:`send_wave`."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def send_wave(self, topic: str, wave: Sequence[Write], tail: Sequence[Write] = ()) -> list[Any]:
        """Send ``(partition, key, value)`` messages, each partition's in order, then each partition's messages of
        ``tail`` in record batches of their own (the producer keeps one request in flight per broker, so a
        partition's batches land in the order sent); returns, once the broker has them all, one
        ``RecordMetadata`` per record batch (its ``offset``: the batch's first message)."""
        producer = self.app.producer._ensure_producer()
        parts: dict[int, list[list[tuple[bytes, bytes | None]]]] = {}
        for segment, messages in enumerate((wave, tail)):
            for partition, key, value in messages:
                runs = parts.setdefault(partition, [[], []])
                runs[segment].append((key, value))
        sent = []
        for partition, runs in parts.items():
            for messages in runs:
                if not messages:
                    continue
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


# -- table stores -------------------------------------------------------------------------------------------------


def store_key_partitions(store: Any) -> dict[bytes, int]:
    """The memory store's key → partition map (faust keeps it to drop a revoked partition's keys)."""
    return store._key_partition


def rocksdb_key_index(store: Any) -> MutableMapping[bytes, int]:
    """The rocksdb store's key → partition index (an LRU cache faust consults before searching every database)."""
    return store._key_index


def rocksdb_dbs_for_key(store: Any, key: bytes) -> Iterable[Any]:
    """The rocksdb databases that may hold ``key`` (its partition's, when indexed; else every active one)."""
    return store._dbs_for_key(key)


def rocksdb_dbs_for_actives(store: Any) -> Iterable[Any]:
    """The rocksdb databases of the partitions this worker owns."""
    return store._dbs_for_actives()


def rocksdb_db_for_partition(store: Any, partition: int) -> Any:
    """The rocksdb database of one partition (opened on first use)."""
    return store._db_for_partition(partition)


# -- a stalled consumer's dump ------------------------------------------------------------------------------------


def fetch_positions(consumer: Any) -> dict[tuple[str, int], int]:
    """The Kafka client's next offset to hand over, per assigned partition (empty before it has an assignment):
    what faust's consumer has been given, processed or not (:meth:`streams.positions.InputPositions.lost`)."""
    assignment = _assignment(_kafka_client(consumer))
    if assignment is None:
        return {}
    out = {}
    for ktp in list(assignment.tps):
        state = assignment.state_value(ktp)
        position = state._position if state is not None else None
        if position is not None:
            out[(ktp.topic, ktp.partition)] = position
    return out


def describe_consumer(app: Any) -> str:
    """A faust consumer's flow and per-partition bookkeeping, and its Kafka client's group membership, for a
    stalled worker's dump: whether its flow is suspended, which partitions it fetches and from where, and how
    far each is read, committed and acknowledged."""
    consumer = app.consumer
    recovery = app.tables.recovery
    lines = [
        f"consumer: flow_active={consumer.flow_active} suspend_flow={consumer.suspend_flow.is_set()} "
        f"flow_control={app.flow_control.is_active()} rebalancing={app.rebalancing} "
        f"recovery_completed={recovery.completed.is_set()} in_recovery={recovery.in_recovery} "
        f"generation={app.consumer_generation_id} unacked={len(consumer._unacked_messages)}",
        f"paused: {sorted(map(str, consumer._paused_partitions))}",
        f"buffered: {sorted(map(str, consumer._buffered_partitions))}",
    ]
    client = _kafka_client(consumer)
    coordinator = getattr(client, "_coordinator", None)
    positions = fetch_positions(consumer)
    if coordinator is not None:
        assignment = _assignment(client)
        lines.append(
            f"kafka client: coordinator={coordinator.coordinator_id} generation={coordinator.generation} "
            f"member={coordinator.member_id!r} rejoin_needed={coordinator._rejoin_needed_fut.done()} "
            f"assigned={'none' if assignment is None else len(assignment.tps)} "
            f"join_prepared={getattr(coordinator, '_performed_join_prepare', '?')} "
            f"coordination_task={_task_state(getattr(coordinator, '_coordination_task', None))}"
        )
    active = consumer._active_partitions or set()
    routed = app.topics._tp_index
    for tp in sorted(consumer.assignment()):
        lines.append(
            f"{tp.topic}[{tp.partition}]: active={tp in active} routed={len(routed.get(tp, ()))} "
            f"read={consumer._read_offset.get(tp)} committed={consumer._committed_offset.get(tp)} "
            f"acked={len(consumer._acked.get(tp, ()))} highwater={consumer.highwater(tp)} "
            f"fetch_position={positions.get((tp.topic, tp.partition))}"
        )
    return "\n".join(lines)


def _task_state(task: Any) -> str:
    """``running``, ``done``, or how it ended: a coordinator task that died leaves the group unjoined for good."""
    if task is None:
        return "none"
    if not task.done():
        return "running"
    if task.cancelled():
        return "cancelled"
    return f"failed: {task.exception()!r}" if task.exception() is not None else "done"
