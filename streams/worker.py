"""The faust runner: Kafka in, the engine in the middle, sinks and dead-letter topics out.

faust runs the consumer group, the state table and its changelog recovery;
the three topics (co-partitioned by ``customer_id``) are read as raw bytes,
a whole fetch at a time, straight from faust's consumer
(:mod:`streams.faust_internals`, not an agent's per-message stream), and
handed to the batch loop (:class:`streams.worker_loop.WorkerLoop`, which
knows nothing of faust). For each batch the loop decodes, runs the engine, writes the alerts to the
sinks (off the event loop, retrying), publishes dead letters to
``<topic>.dlq``, and sends the batch's state changes to the changelog (one
record batch per partition). Each input partition's next offset is kept in
that state and every record checked against it (:mod:`streams.positions`):
at-least-once, with idempotent sinks and deterministic alert ids, so a crash
never loses or duplicates an alert. The stored positions are committed to
the consumer group on every tick and at shutdown, after the changelog that
holds them. A timer advances idle partitions' watermarks so deadlines fire
without traffic.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Awaitable
from dataclasses import replace
from typing import Any

import faust

from rules.bundle import RuleBundle
from sinks.outbox import OUTBOX_PREFIX
from streams.assembly import build_engine
from streams.config import Config
from streams.decode import DeadLetter, Decoder
from streams.engine.engine import WATERMARK_NAMESPACE
from streams.faust_internals import (
    BatchProducer,
    commit_offsets,
    committed_offset,
    describe_consumer,
    fetch_positions,
    in_progress,
    read_in_batches,
    run_after_faust_seeks,
    seek_in_consumer_thread,
)
from streams.faust_state import FaustBackend
from streams.health import Health
from streams.metrics import PipelineMetrics
from streams.offset_probe import OffsetProbe
from streams.pipeline import Pipeline, Record
from streams.positions import POSITIONS_NAMESPACE, InputPositions
from streams.reload import BundleFollower, DirectoryWatch, RuleReloader
from streams.stuck import FlowWatchdog
from streams.taskdump import install_task_dump
from streams.worker_loop import WorkerLoop
from yujing.protocols import Rule

__all__ = ["build_worker_app", "ensure_topics"]

log = logging.getLogger(__name__)


def ensure_topics(bootstrap: str, topics: list[str], partitions: int) -> None:
    """Create missing topics with ``partitions`` partitions (co-partitioning needs equal counts)."""
    from kafka.admin import KafkaAdminClient, NewTopic
    from kafka.errors import TopicAlreadyExistsError

    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="yujing-admin")
    try:
        existing = set(admin.list_topics())
        missing = [NewTopic(t, partitions, 1) for t in topics if t not in existing]
        if missing:
            with contextlib.suppress(TopicAlreadyExistsError):  # another worker was first
                admin.create_topics(missing)
    finally:
        admin.close()


def _headers(letter: DeadLetter) -> list[tuple[str, bytes]]:
    """Kafka Connect style context headers on a dead letter."""
    return [
        ("yujing.dlq.topic", letter.topic.encode()),
        ("yujing.dlq.partition", str(letter.partition).encode()),
        ("yujing.dlq.offset", str(letter.offset).encode()),
        ("yujing.dlq.category", letter.category.encode()),
        ("yujing.dlq.field", (letter.field or "").encode()),
        ("yujing.dlq.reason", letter.reason.encode()),
    ]


def build_worker_app(
    config: Config, rules: list[Rule], sinks: list[Any], metrics: PipelineMetrics, rules_version: str = "", health: Health | None = None
) -> faust.App:
    """A faust app running Yujing's engine over the configured topics.

    ``health`` (served as /healthz and /readyz) gets a heartbeat from the app's event loop and the checks
    that make the worker ready: rules loaded, state recovered, no rebalance in progress.

    With ``rules.watch`` it looks at the rules directory every so many seconds, with
    ``rules.topic`` it follows published bundles; either way a new rule set is swapped
    in between batches when it compiles in full (:mod:`streams.reload`).
    """
    kc = config.kafka
    app = faust.App(
        kc.app_id,
        broker=f"kafka://{kc.bootstrap}",
        store=kc.store,
        datadir=(kc.data_dir or f"{kc.app_id}-data").replace("{hostname}", socket.gethostname()),  # one per replica
        topic_partitions=kc.partitions,
        topic_replication_factor=1,
        broker_session_timeout=kc.session_timeout,
        producer_max_batch_size=512 * 1024,  # a batch's changelog wave in a few record batches (BatchProducer)
        consumer_auto_offset_reset="earliest",
        producer_max_request_size=8 * 1024 * 1024,
        consumer_max_fetch_size=8 * 1024 * 1024,
        web_enabled=False,
        table_cleanup_interval=3600.0,
        table_standby_replicas=kc.standby_replicas,
    )
    topic_kinds = kc.topics()
    # Raw bytes in and out: decoding (and rejecting) is ours. With faust's default codec a
    # message that is not JSON would stop the stream before our decoder ever saw it.
    source = app.topic(*topic_kinds, key_serializer="raw", value_serializer="raw", partitions=kc.partitions)
    dlq_topics = {
        name: app.topic(name + kc.dlq_suffix, key_serializer="raw", value_serializer="raw", partitions=kc.partitions)
        for name in topic_kinds
    }
    # Cohort rules across workers: a group's records and every input partition's watermark reach the worker that
    # owns the group's partition of this topic (co-partitioned with the inputs and the table: same count).
    cohort_name = kc.cohort_topic_name() if kc.cohort_topic else ""
    cohort_topic = (
        app.topic(cohort_name, key_serializer="raw", value_serializer="raw", partitions=kc.partitions, internal=True)
        if cohort_name
        else None
    )
    table = app.Table("state", key_type=bytes, value_type=bytes, partitions=kc.partitions)
    # Clocks and input positions go in the changelog's second wave, after the state they cover.
    # Undelivered alerts first, then the state that remembers them as raised (see FaustBackend.send_changelog).
    backend = FaustBackend(table, markers=(WATERMARK_NAMESPACE, POSITIONS_NAMESPACE), first=(OUTBOX_PREFIX,))
    engine_config = replace(config.engine.engine_config(idle=True), partitions=kc.partitions, exchange=bool(cohort_name))
    engine, silences = build_engine(rules, backend, config, engine_config, observer=metrics)
    pipeline = Pipeline(engine, Decoder(topic_kinds), sinks, metrics)
    probe = OffsetProbe(kc.bootstrap)
    positions = InputPositions(backend, probe)

    async def seek(topic: str, partition: int, offset: int) -> None:
        await seek_in_consumer_thread(app.consumer, topic, partition, offset)

    async def send_dead(letter: DeadLetter) -> None:
        await dlq_topics[letter.topic].send(key=letter.key, value=letter.value, headers=_headers(letter))

    async def offload(fn: Any, arg: Any) -> Any:  # sink writes block: off the event loop
        return await asyncio.get_running_loop().run_in_executor(None, fn, arg)

    loop = WorkerLoop(
        pipeline, backend, positions, BatchProducer(app), seek, send_dead, cohort_topic=cohort_name, offload=offload, metrics=metrics
    )
    lock = loop.lock

    @app.task
    async def dump_tasks_on_sigusr1() -> None:
        install_task_dump(asyncio.get_running_loop(), describe=lambda: describe_consumer(app))

    async def seek_from_state() -> None:
        """After faust's own seek of a rebalance (to the committed offsets) and before its flow resumes, seek the
        assigned input partitions whose commit lies beyond where the state ends, or is unknown, to where it
        ends (InputPositions.starts). Before the flow resumes nothing has been read since the rebalance, so
        the seek leaves no offset acknowledged twice or never (either slows or stops faust's commits)."""
        consumer = app.consumer
        inputs = [(tp.topic, tp.partition) for tp in consumer.assignment() if is_input(tp.topic)]
        starts = positions.starts(inputs, committed=lambda tp: committed_offset(consumer, *tp))
        await loop.rewind(starts)
        metrics.input_positions(*positions.take_counts())
        log.info("after the rebalance: %d of %d input partitions sought to where the state ends", len(starts), len(inputs))

    @app.on_partitions_revoked.connect
    async def rebalance_began(app: faust.App, revoked: Any, **_: Any) -> None:
        pipeline.suspend_keepalive()  # until recovered() says which open alerts are still this worker's

    @table.on_recover
    async def recovered() -> None:
        found = loop.recover(tp.partition for tp in app.assignor.assigned_actives())
        silences.seen = None  # apply the log again over what state held
        silences.poll()
        run_after_faust_seeks(app.consumer, seek_from_state)  # faust seeks right after this callback
        log.info(
            "state recovered: %d writes of a cut-short batch applied, %d timers pending, %d undelivered sink items queued again",
            found.journal_writes,
            found.timers,
            found.undelivered,
        )

    def is_input(topic: str) -> bool:
        return topic in topic_kinds or topic == cohort_name

    async def run_to_its_end(work: Awaitable[None]) -> None:
        # A batch runs to its end (sinks written, changelog sent) even when the fetcher is cancelled
        # (a rebalance, shutdown): its positions are stored with the state they cover.
        task = asyncio.ensure_future(work)
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            await task
            await loop.persist()  # what the fetch's earlier slices left in the write buffer goes too
            raise
        except Exception:
            log.exception("a batch failed; its records are read again from the positions in state")
            raise

    async def on_batch(records: list[Record]) -> None:
        # A fetch's slices share one commit (on_fetch_end), as Kafka Streams commits at an interval: the
        # state a key writes in several slices goes once, and the changelog's round trips once a fetch.
        await run_to_its_end(loop.handle(records, persist=False))

    async def on_fetch_end() -> None:
        await run_to_its_end(loop.persist())

    app.topics.add(source)  # subscribed; its records reach on_batch, not the topic's queue
    if cohort_topic is not None:
        app.topics.add(cohort_topic)
    read_in_batches(
        app,
        is_input=is_input,
        on_batch=on_batch,
        batch_max=kc.batch_max,
        timeout=kc.batch_wait,
        ready=app.tables.recovery.completed.is_set,
        on_fetch_end=on_fetch_end,
        fetch_max_wait=kc.fetch_max_wait,
    )

    def export_lag() -> set[tuple[int, str]]:
        """High watermark minus the next offset the input positions expect, per assigned input partition;
        returns the ``(partition, stream kind)`` pairs with records left to read, or not fetched yet (their
        silence is not idleness)."""
        behind = set()
        for tp in app.consumer.assignment():
            kind = topic_kinds.get(tp.topic)
            if kind is None:
                continue
            expected = positions.expected.get((tp.topic, tp.partition))
            highwater = app.consumer.highwater(tp)
            if highwater is None:  # not fetched yet: what it holds is unknown, so its silence is not idleness
                behind.add((tp.partition, kind))
                continue
            lag = max(0, highwater - (expected if expected is not None else 0))
            if expected is not None:
                metrics.consumer_lag_records.labels(tp.topic, str(tp.partition)).set(lag)
            if lag > 0:
                behind.add((tp.partition, kind))
        return behind

    @app.timer(interval=kc.tick_interval)
    async def advance_idle_partitions() -> None:
        behind, fetched = None, None
        with contextlib.suppress(Exception):  # the consumer may be rebalancing; the next tick exports it
            behind = export_lag()
            busy = in_progress(app.consumer)  # a fetch handed over slice by slice: its records are on their way
            fetched = {tp: at for tp, at in fetch_positions(app.consumer).items() if is_input(tp[0]) and tp not in busy}
        async with lock:
            await loop.tick(behind, fetched)
            await commit_positions()

    if health is not None:
        health.add_check("rules", lambda: None if engine.rules else "no rules loaded")
        health.add_check("state", lambda: None if app.tables.recovery.completed.is_set() else "recovering state from the changelog")
        health.add_check("group", lambda: "rebalancing" if app.rebalancing else None)

        @app.timer(interval=min(kc.tick_interval, 5.0))
        async def heartbeat() -> None:
            health.beat()

    @app.on_before_shutdown.connect
    async def close_probe(app: faust.App, **_: Any) -> None:
        await probe.close()

    @app.timer(interval=config.alerting.silences_poll)
    async def follow_silences() -> None:
        async with lock:
            silences.poll()

    @app.on_before_shutdown.connect
    async def drain_sinks(app: faust.App, **_: Any) -> None:
        # What is not written in time stays in the outbox state and is sent again after a restart.
        async with lock:
            await loop.persist_unlocked()  # what a fetch cut short left in the write buffer, before its positions
            await asyncio.get_running_loop().run_in_executor(None, pipeline.drain, 20.0)
            await commit_positions()  # the group's offsets where the state ends: a restart reads nothing twice

    async def commit_positions() -> None:
        """Commit the input positions stored since the last commit (call under the lock: the changelog that
        holds them is sent by then). The group's offsets only save reading again; the state decides."""
        with contextlib.suppress(Exception):  # revoked, rebalancing or stopping: the state still has them
            await commit_offsets(app.consumer, positions.take_committable())

    watchdog = FlowWatchdog(app)

    @app.timer(interval=kc.stuck_check_interval)
    async def resume_a_stuck_flow() -> None:
        async with lock:
            await watchdog.check()

    reloader = RuleReloader(engine, metrics, rules_version or "startup")

    async def reload(bundle: RuleBundle) -> None:
        async with lock:  # between batches: a batch never sees two rule sets
            reloader.apply(bundle)

    if config.rules.watch > 0:
        watch = DirectoryWatch(config.rules.dir, seen=rules_version or None)

        @app.timer(interval=config.rules.watch)
        async def watch_rules_directory() -> None:
            bundle = watch.poll()
            if bundle is not None:
                await reload(bundle)

    if config.rules.topic:
        follower = BundleFollower(kc.bootstrap, config.rules.topic)

        @app.task
        async def follow_rules_topic() -> None:
            await follower.run(reload)

    return app
