"""The worker's use of faust and aiokafka internals (streams/faust_internals.py).

One test per private access: an upgrade of faust-streaming or aiokafka that moves or reshapes one fails here,
by name, before any integration test stalls on it. Then the batch drain against a scripted consumer: whole
fetches to ``on_batch`` in fair slices, changelog records through faust's own route, and nothing processed
from a fetch a rebalance overtook.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import inspect
import re
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import faust
import pytest
from aiokafka.errors import GroupAuthorizationFailedError, KafkaError
from faust.types import TP
from hypothesis import given
from hypothesis import strategies as st

from streams import faust_internals
from streams.faust_internals import PRIVATE_ACCESSES, fair_slices, in_progress, read_in_batches
from streams.pipeline import Record
from tests.unit.group_errors import BorrowedCoordinator

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def app() -> Iterator[faust.App]:
    yield faust.App("t-internals", broker="kafka://127.0.0.1:1", store="memory://", web_enabled=False)


@pytest.mark.parametrize("package", ["faust-streaming", "aiokafka"])
def test_the_packages_whose_internals_are_used_are_pinned_to_the_installed_version(package: str) -> None:
    pins = dict(re.findall(r'"([a-z-]+)==([0-9.]+)"', (ROOT / "pyproject.toml").read_text()))
    assert pins.get(package) == version(package), f"{package}: pinned {pins.get(package)}, installed {version(package)}"


@pytest.mark.parametrize(("owner", "attribute"), PRIVATE_ACCESSES, ids=[f"{o}.{a}" for o, a in PRIVATE_ACCESSES])
def test_each_private_attribute_used_exists(owner: str, attribute: str, app: faust.App) -> None:
    module, _, name = owner.rpartition(".")
    cls = getattr(importlib.import_module(module), name)
    instances = [app.consumer, app.producer]
    present = hasattr(cls, attribute) or any(isinstance(i, cls) and hasattr(i, attribute) for i in instances)
    # an instance attribute of a class that needs a running client to exist: assigned in its own source
    present = present or any(f"self.{attribute} =" in source or f"self.{attribute}:" in source for source in _sources(cls))
    assert present, f"{owner}.{attribute} is gone: streams/faust_internals.py must change with the upgrade"


def _sources(cls: type) -> list[str]:
    out = []
    for klass in cls.__mro__:
        with contextlib.suppress(OSError, TypeError):  # builtins have no source
            out.append(inspect.getsource(klass))
    return out


@pytest.mark.parametrize("store", ["memory://", "rocksdb://"])
def test_the_table_store_accessors_on_faust_s_own_stores(store: str, tmp_path: Path) -> None:
    """The state backend's direct writes and reads (store_key_partitions, rocksdb_*) on a real faust table store:
    written to their partitions, read back by key and by prefix, a delete forgotten."""
    from streams.faust_state import FaustBackend

    app = faust.App(f"t-store-{tmp_path.name}", broker="kafka://127.0.0.1:1", store=store, datadir=str(tmp_path), topic_partitions=4)
    table = app.Table("state", key_type=bytes, value_type=bytes, partitions=4)
    owned = {TP(table.changelog_topic.get_topic_name(), p) for p in range(4)}
    app.assignor.assigned_actives = lambda: owned  # type: ignore[method-assign]  # as after an assignment
    backend = FaustBackend(table)
    for partition, key in ((1, "a"), (3, "b"), (3, "c")):
        backend.use_partition(partition)
        backend.namespace("ns", int).set(key, partition)
    backend.flush()
    backend.use_partition(3)
    backend.namespace("ns", int).delete("c")
    backend.flush()
    again = FaustBackend(table)  # nothing cached: from the store
    assert again.namespace("ns", int).get("a") == 1
    assert again.namespace("ns", int).get("c") is None
    assert sorted(k for k, _ in again.stored_with_prefix(b"ns\x1f")) == [b"ns\x1fa", b"ns\x1fb"]
    index = faust_internals.store_key_partitions(table.data) if store == "memory://" else faust_internals.rocksdb_key_index(table.data)
    assert (index.get(b"ns\x1fa"), index.get(b"ns\x1fb"), index.get(b"ns\x1fc")) == (1, 3, None)


def test_run_after_faust_seeks_wraps_the_seek_once_and_runs_after_it() -> None:
    calls: list[str] = []

    class Consumer:
        async def perform_seek(self) -> None:
            calls.append("faust")

    async def hook() -> None:
        calls.append("ours")

    consumer = Consumer()
    faust_internals.run_after_faust_seeks(consumer, hook)
    faust_internals.run_after_faust_seeks(consumer, hook)  # a second recovery: not wrapped twice
    asyncio.run(consumer.perform_seek())
    assert calls == ["faust", "ours"]


def test_the_worker_seeks_through_seek_wait_never_from_its_own_thread() -> None:
    calls: list[tuple[str, Any]] = []

    class Consumer:
        async def seek_wait(self, partitions: dict[TP, int]) -> None:
            calls.append(("seek_wait", partitions))

        async def seek(self, tp: TP, offset: int) -> None:  # aiokafka's seek from the caller's thread: a race
            calls.append(("seek", (tp, offset)))

    asyncio.run(faust_internals.seek_in_consumer_thread(Consumer(), "orders", 3, 41))
    assert calls == [("seek_wait", {TP("orders", 3): 41})]


def test_faust_s_seek_wait_runs_aiokafka_s_seek_on_the_consumer_thread() -> None:
    """seek_in_consumer_thread relies on this: faust's seek_wait queues the seek on the consumer thread's method
    queue (``call_thread``), where the fetcher's reads also run, so the two never interleave."""
    from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread, Consumer

    assert "self._thread.seek_wait(" in inspect.getsource(Consumer.seek_wait)
    assert "self.call_thread(self._seek_wait," in inspect.getsource(AIOKafkaConsumerThread.seek_wait)
    assert "consumer.seek(tp, offset)" in inspect.getsource(AIOKafkaConsumerThread._seek_wait)
    assert "self.call_thread(" in inspect.getsource(AIOKafkaConsumerThread.getmany)  # the reads: the same queue


def test_faust_s_fetcher_runs_the_consumer_s_drain_with_itself() -> None:
    """read_in_batches replaces ``consumer._drain_messages``; faust must still call it, with the Fetcher."""
    from faust.transport.consumer import Fetcher

    assert "consumer._drain_messages(self)" in inspect.getsource(Fetcher._fetcher.fun)


def test_the_signatures_the_drain_relies_on() -> None:
    from faust.transport.consumer import Consumer

    assert list(inspect.signature(Consumer._wait_next_records).parameters) == ["self", "timeout"]
    assert list(inspect.signature(Consumer._to_message).parameters) == ["self", "tp", "record"]
    assert list(inspect.signature(Consumer._commit_offsets).parameters)[:2] == ["self", "offsets"]
    source = inspect.getsource(Consumer._wait_next_records)
    assert "return records, active_partitions" in source


def test_the_aiokafka_producer_under_faust_s_has_the_batch_api(app: faust.App) -> None:
    from aiokafka import AIOKafkaProducer

    assert callable(AIOKafkaProducer.create_batch) and callable(AIOKafkaProducer.send_batch)
    assert "_ensure_producer" in dir(type(app.producer))


def test_a_wave_s_tail_goes_after_it_in_record_batches_of_its_own() -> None:
    """The changelog's markers (the tail) must end each partition's log in batches of their own (see
    FaustBackend.send_changelog); aiokafka sends a partition's batches in order because it keeps one request in
    flight per broker, which this checks in its source too."""
    from aiokafka.producer.sender import Sender

    assert "ignore_nodes=self._in_flight" in inspect.getsource(Sender._sender_routine)

    class Batch:
        def __init__(self) -> None:
            self.keys: list[bytes] = []

        def append(self, key: bytes, value: bytes | None, timestamp: None) -> object | None:
            if len(self.keys) == 2:  # full
                return None
            self.keys.append(key)
            return object()

    class Producer:
        def __init__(self) -> None:
            self.sent: list[tuple[int, list[bytes]]] = []

        def create_batch(self) -> Batch:
            return Batch()

        async def send_batch(self, batch: Batch, topic: str, partition: int) -> asyncio.Future[tuple[int, list[bytes]]]:
            self.sent.append((partition, batch.keys))
            done: asyncio.Future[tuple[int, list[bytes]]] = asyncio.get_running_loop().create_future()
            done.set_result((partition, batch.keys))
            return done

    producer = Producer()

    class App:
        class producer:  # faust's attribute
            @staticmethod
            def _ensure_producer() -> Producer:
                return producer

    wave = [(0, b"a", b"1"), (1, b"b", b"1"), (0, b"c", b"1"), (0, b"d", None)]
    tail = [(1, b"m1", b"t"), (0, b"m0", b"t")]
    acks = asyncio.run(faust_internals.BatchProducer(App()).send_wave("t", wave, tail))
    assert producer.sent == [(0, [b"a", b"c"]), (0, [b"d"]), (0, [b"m0"]), (1, [b"b"]), (1, [b"m1"])]
    assert acks == producer.sent


runs_strategy = st.lists(st.integers(min_value=0, max_value=60), max_size=8)


@given(runs_strategy, st.integers(min_value=1, max_value=50))
def test_fair_slices_keep_every_record_once_in_partition_order_and_share_each_partition(sizes: list[int], batch_max: int) -> None:
    runs = [[Record(f"t{i}", 0, offset, None, None) for offset in range(size)] for i, size in enumerate(sizes)]
    runs = [run for run in runs if run]
    batches = fair_slices(runs, batch_max)
    flat = [record for batch in batches for record in batch]
    assert sorted(flat) == sorted(record for run in runs for record in run)
    for run in runs:  # each partition's records in offset order across the batches
        offsets = [r.offset for r in flat if r.topic == run[0].topic]
        assert offsets == sorted(offsets)
    total = len(flat)
    if total <= batch_max:
        assert len(batches) == (1 if total else 0)
        return
    assert len(batches) <= -(-total // batch_max)
    for batch in batches:  # about batch_max each (each run rounds on its own)
        assert len(batch) <= batch_max + len(runs)
        for run in runs:  # a partition's share of every batch: within one record of the even split
            share = sum(1 for r in batch if r.topic == run[0].topic)
            assert abs(share - len(run) / len(batches)) <= 1


Fetches = list[dict[TP, list[int]]]


class _Flag:
    def __init__(self) -> None:
        self.set_ = False

    def is_set(self) -> bool:
        return self.set_


class _ConsumerRecord:
    def __init__(self, offset: int) -> None:
        self.offset, self.key, self.value = offset, b"k", b"v%d" % offset


class ScriptedConsumer:
    """Just what the drain touches of a faust consumer, with fetches scripted in advance."""

    consumer_stopped_errors: tuple[type[BaseException], ...] = (ConnectionError,)

    def __init__(self, app: Any, fetches: Fetches) -> None:
        self.app = app
        self.fetches = fetches
        self._stopped = _Flag()
        self._read_offset: dict[TP, int] = {}
        self._buffered_partitions: set[TP] = set()
        self.flow_active = True
        self.should_stop = False
        self.delivered: list[tuple[TP, int]] = []
        self.seeks = 0
        self.sought: list[dict[TP, int]] = []  # the drain's own seeks (read_again)
        self.suspend_flow = asyncio.Event()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(0)

    async def _wait_next_records(self, timeout: float) -> tuple[dict[TP, list[_ConsumerRecord]], set[TP] | None]:
        if not self.fetches:
            self._stopped.set_ = True
            return {}, None
        fetch = self.fetches.pop(0)
        return {tp: [_ConsumerRecord(o) for o in offsets] for tp, offsets in fetch.items()}, None

    def _to_message(self, tp: TP, record: _ConsumerRecord) -> tuple[TP, int]:
        return tp, record.offset

    async def callback(self, message: tuple[TP, int]) -> None:
        self.delivered.append(message)

    async def wait_first(self, *coros: Any) -> None:
        await coros[0]
        for coro in coros[1:]:
            coro.close()

    async def perform_seek(self) -> None:
        self.seeks += 1

    async def seek_wait(self, partitions: dict[TP, int]) -> None:
        self.sought.append(dict(partitions))


class ScriptedApp:
    def __init__(self) -> None:
        self.consumer_generation_id = 1
        self.should_stop = False
        self.consumer: ScriptedConsumer | None = None


def _drain(
    fetches: list[dict[TP, list[int]]], batch_max: int = 1000, rebalance_after_fetch: int | None = None
) -> tuple[list[list[Record]], ScriptedConsumer]:
    app = ScriptedApp()
    consumer = app.consumer = ScriptedConsumer(app, fetches)
    batches: list[list[Record]] = []

    async def on_batch(records: list[Record]) -> None:
        batches.append(records)

    read_in_batches(app, is_input=lambda topic: topic in {"orders", "billing"}, on_batch=on_batch, batch_max=batch_max)
    fetcher = type("Fetcher", (), {"_stopped": _Flag()})()
    asyncio.run(consumer._drain_messages(fetcher))  # type: ignore[attr-defined]
    return batches, consumer


def test_a_fetch_reaches_on_batch_whole_and_changelog_records_take_faust_s_route() -> None:
    orders, billing, changelog = TP("orders", 0), TP("billing", 0), TP("app-state-changelog", 0)
    batches, consumer = _drain([{orders: [5, 6, 7], changelog: [0, 1], billing: [2]}])
    assert [[(r.topic, r.offset) for r in b] for b in batches] == [[("orders", 5), ("orders", 6), ("orders", 7), ("billing", 2)]]
    assert consumer.delivered == [(changelog, 0), (changelog, 1)]
    assert consumer._read_offset == {orders: 7, billing: 2, changelog: 1}


def test_a_large_fetch_is_cut_into_fair_batches() -> None:
    orders, billing = TP("orders", 0), TP("billing", 0)
    batches, _ = _drain([{orders: list(range(8)), billing: list(range(4))}], batch_max=6)
    assert [[(r.topic[0], r.offset) for r in b] for b in batches] == [
        [("o", 0), ("o", 1), ("o", 2), ("o", 3), ("b", 0), ("b", 1)],
        [("o", 4), ("o", 5), ("o", 6), ("o", 7), ("b", 2), ("b", 3)],
    ]


def test_what_is_left_of_a_fetch_after_a_rebalance_is_not_processed() -> None:
    """A rebalance while one slice of a fetch is processed: the slices after it belong to the old generation."""
    app = ScriptedApp()
    consumer = app.consumer = ScriptedConsumer(app, [{TP("orders", 0): [0, 1, 2, 3]}, {TP("orders", 0): [0, 1]}])
    seen: list[list[int]] = []

    async def on_batch(records: list[Record]) -> None:
        seen.append([r.offset for r in records])
        if len(seen) == 1:
            app.consumer_generation_id += 1  # the group rebalanced meanwhile

    async def on_fetch_end() -> None:
        seen.append([])  # the commit of what the fetch's slices left

    read_in_batches(app, is_input=lambda topic: topic == "orders", on_batch=on_batch, batch_max=2, on_fetch_end=on_fetch_end)
    asyncio.run(consumer._drain_messages(type("Fetcher", (), {"_stopped": _Flag()})()))  # type: ignore[attr-defined]
    assert seen == [[0, 1], [], [0, 1], []]  # [2, 3] dropped, yet [0, 1] committed; the next fetch (after faust's seek) too
    assert consumer.sought == [{TP("orders", 0): 2}]  # …and read again from 2 (faust's seek may already be behind us)


def test_a_fetch_s_slices_are_committed_once_after_the_last() -> None:
    app = ScriptedApp()
    consumer = app.consumer = ScriptedConsumer(app, [{TP("orders", 0): [0, 1, 2, 3, 4]}, {TP("billing", 0): [7]}, {TP("orders", 0): [5]}])
    seen: list[list[int] | str] = []

    async def on_batch(records: list[Record]) -> None:
        seen.append([r.offset for r in records])

    async def on_fetch_end() -> None:
        seen.append("commit")

    read_in_batches(app, is_input=lambda topic: topic == "orders", on_batch=on_batch, batch_max=2, on_fetch_end=on_fetch_end)
    asyncio.run(consumer._drain_messages(type("Fetcher", (), {"_stopped": _Flag()})()))  # type: ignore[attr-defined]
    first = seen.index("commit")
    assert first == 3 and [o for part in seen[:first] for o in part] == [0, 1, 2, 3, 4]  # three slices, then one commit
    assert seen[first + 1 :] == [[5], "commit"]  # a fetch with no input record (billing) commits nothing


def test_a_fetch_made_while_the_flow_stopped_is_dropped_and_faust_seeks() -> None:
    app = ScriptedApp()
    consumer = app.consumer = ScriptedConsumer(app, [{TP("orders", 0): [0]}])
    consumer.flow_active = False
    seen: list[list[Record]] = []

    async def on_batch(records: list[Record]) -> None:
        seen.append(records)

    read_in_batches(app, is_input=lambda topic: topic == "orders", on_batch=on_batch)
    asyncio.run(consumer._drain_messages(type("Fetcher", (), {"_stopped": _Flag()})()))  # type: ignore[attr-defined]
    assert seen == [] and consumer.seeks == 1


def test_read_in_batches_replaces_the_drain_of_a_real_faust_consumer_once(app: faust.App) -> None:
    async def on_batch(records: list[Record]) -> None:
        pass

    read_in_batches(app, is_input=lambda topic: True, on_batch=on_batch)
    drain = app.consumer._drain_messages
    read_in_batches(app, is_input=lambda topic: True, on_batch=on_batch)
    assert app.consumer._drain_messages is drain and drain.__qualname__.startswith("read_in_batches")
    assert faust_internals.__doc__ and "PRIVATE_ACCESSES" in faust_internals.__doc__


def test_input_fetched_before_the_state_is_recovered_is_not_processed_and_changelogs_still_are() -> None:
    """faust fetches the changelogs with the same consumer: input read meanwhile waits for faust's seek after recovery."""
    app = ScriptedApp()
    orders, changelog = TP("orders", 0), TP("app-state-changelog", 0)
    consumer = app.consumer = ScriptedConsumer(app, [{orders: [0, 1], changelog: [0]}, {orders: [0, 1]}])
    recovered = [False]
    seen: list[list[int]] = []

    async def on_batch(records: list[Record]) -> None:
        seen.append([r.offset for r in records])

    async def fetch_and_recover(timeout: float) -> Any:
        out = await ScriptedConsumer._wait_next_records(consumer, timeout)
        if len(seen) == 0 and consumer.delivered:  # the first fetch is done: recovery completes
            recovered[0] = True
        return out

    consumer._wait_next_records = fetch_and_recover  # type: ignore[method-assign]
    read_in_batches(app, is_input=lambda topic: topic == "orders", on_batch=on_batch, ready=lambda: recovered[0])
    asyncio.run(consumer._drain_messages(type("Fetcher", (), {"_stopped": _Flag()})()))  # type: ignore[attr-defined]
    assert consumer.delivered == [(changelog, 0)] and seen == [[0, 1]]  # the second fetch (after the seek) only
    # …and the partition is sought back to what it dropped: faust's seek may have been made before that fetch
    # returned (it seeks before the recovery completes), and then nothing else would read it again
    assert consumer.sought == [{orders: 0}]


def test_the_worker_app_builds_and_reads_its_inputs_in_batches(tmp_path: Path) -> None:
    """build_worker_app wires the drain (no broker is contacted to build it)."""
    from prometheus_client import CollectorRegistry

    from rules import load_rules
    from streams.config import default_rules_dir, load_config
    from streams.metrics import PipelineMetrics
    from streams.worker import build_worker_app

    config = load_config(None, environ={"YUJING_KAFKA_APP_ID": f"t-build-{tmp_path.name}", "YUJING_KAFKA_DATA_DIR": str(tmp_path)})
    built = build_worker_app(config, load_rules(default_rules_dir()).rules, [], PipelineMetrics(CollectorRegistry()))
    assert built.consumer.reads_in_batches and built.consumer._drain_messages.__qualname__.startswith("read_in_batches")
    assert {t for topic in built.topics for t in topic.topics} >= set(config.kafka.topics())


def test_the_fetch_wait_reaches_the_aiokafka_fetcher_once_it_exists_and_every_fetch_request_reads_it() -> None:
    """faust fixes aiokafka's fetch wait at 1.5 s; the drain sets the fetcher's own once the client has one (it is
    created when the client starts), and aiokafka builds each fetch request from that attribute."""
    app = ScriptedApp()
    consumer = app.consumer = ScriptedConsumer(app, [{TP("orders", 0): [0]}, {TP("orders", 0): [1]}, {TP("orders", 0): [2]}])
    client = SimpleNamespace()  # the aiokafka consumer, not started: no fetcher yet
    consumer._thread = SimpleNamespace(_consumer=client)  # type: ignore[attr-defined]
    fetcher = SimpleNamespace(_fetch_max_wait_ms=1500)
    waits: list[int | None] = []

    async def on_batch(records: list[Record]) -> None:
        waits.append(getattr(getattr(client, "_fetcher", None), "_fetch_max_wait_ms", None))
        client._fetcher = fetcher  # started meanwhile

    read_in_batches(app, is_input=lambda topic: topic == "orders", on_batch=on_batch, fetch_max_wait=0.1)
    asyncio.run(consumer._drain_messages(SimpleNamespace(_stopped=_Flag())))  # type: ignore[attr-defined]
    assert waits == [None, 100, 100]  # set at the first fetch after the fetcher appeared, and kept
    from aiokafka.consumer.fetcher import Fetcher

    assert "self._fetch_max_wait_ms" in inspect.getsource(Fetcher._get_actions_per_node)  # read per request


def test_the_worker_stops_keeping_alerts_alive_when_a_rebalance_begins(tmp_path: Path) -> None:
    """faust's on_partitions_revoked (every rebalance begins with it) suspends the Alertmanager re-sends until the
    recovery restores the alerts of the partitions still owned (sinks/alertmanager.py: AlertmanagerSink.suspend)."""
    from prometheus_client import CollectorRegistry

    from rules import load_rules
    from sinks.alertmanager import AlertmanagerSink
    from streams.config import default_rules_dir, load_config
    from streams.metrics import PipelineMetrics
    from streams.worker import build_worker_app

    config = load_config(None, environ={"YUJING_KAFKA_APP_ID": f"t-revoke-{tmp_path.name}", "YUJING_KAFKA_DATA_DIR": str(tmp_path)})
    sink = AlertmanagerSink("http://127.0.0.1:1", resend_interval=0)
    built = build_worker_app(config, load_rules(default_rules_dir()).rules, [sink], PipelineMetrics(CollectorRegistry()))
    assert not sink.suspended
    asyncio.run(built.on_partitions_revoked.send({TP("orders", 0)}))
    assert sink.suspended


def test_fetch_positions_reads_aiokafka_s_subscription_state() -> None:
    """The watchdog for records handed over and never processed (InputPositions.lost) reads each assigned
    partition's next offset from aiokafka's own subscription state; one without a position yet is left out."""
    from aiokafka.consumer.subscription_state import SubscriptionState
    from aiokafka.structs import TopicPartition as KafkaTP

    async def positions() -> dict[tuple[str, int], int]:
        state = SubscriptionState()
        state.assign_from_user({KafkaTP("orders", 0), KafkaTP("billing", 1)})
        state.seek(KafkaTP("orders", 0), 41)
        client = type("Client", (), {"_subscription": state})()
        consumer = type("Consumer", (), {"_thread": type("Thread", (), {"_consumer": client})()})()
        return faust_internals.fetch_positions(consumer)

    assert asyncio.run(positions()) == {("orders", 0): 41}
    assert faust_internals.fetch_positions(object()) == {}  # no client yet


def test_the_partitions_of_the_fetch_being_handed_over_are_in_progress_until_its_last_slice() -> None:
    """The watchdog for lost records skips them: a catch-up's fetch is handed over for seconds, and its later
    slices' records were fetched long before they are processed (seen: eight cohort partitions sought back)."""
    app = ScriptedApp()
    orders, billing = TP("orders", 0), TP("billing", 1)
    consumer = app.consumer = ScriptedConsumer(app, [{orders: [0, 1, 2, 3], billing: [7]}, {orders: [4]}])
    during: list[set[tuple[str, int]]] = []

    async def on_batch(records: list[Record]) -> None:
        during.append(set(in_progress(consumer)))

    after: list[set[tuple[str, int]]] = []

    async def on_fetch_end() -> None:
        after.append(set(in_progress(consumer)))

    read_in_batches(app, is_input=lambda topic: topic in {"orders", "billing"}, on_batch=on_batch, batch_max=2, on_fetch_end=on_fetch_end)
    asyncio.run(consumer._drain_messages(type("Fetcher", (), {"_stopped": _Flag()})()))  # type: ignore[attr-defined]
    assert during == [{("orders", 0), ("billing", 1)}] * 3 + [{("orders", 0)}]
    assert after == [set(), set()] and in_progress(consumer) == set()


def test_the_watchdog_leaves_out_the_partitions_in_progress() -> None:
    import streams.worker as worker

    source = inspect.getsource(worker.build_worker_app)
    assert "busy = in_progress(app.consumer)" in source and "tp not in busy" in source


class GroupFailingConsumer(ScriptedConsumer):
    """A scripted consumer whose first fetch waits for an assignment, as aiokafka's does during a rebalance."""

    def __init__(self, app: Any, fetches: Fetches, coordinator: BorrowedCoordinator) -> None:
        super().__init__(app, fetches)
        self.coordinator = coordinator
        self._thread = SimpleNamespace(_consumer=SimpleNamespace(_coordinator=coordinator), call_thread=self._call)
        self.waited = False

    @staticmethod
    async def _call(fn: Any) -> Any:
        return fn()

    async def _wait_next_records(self, timeout: float) -> tuple[dict[TP, list[_ConsumerRecord]], set[TP] | None]:
        if not self.waited:
            self.waited = True
            await self.coordinator._subscription.wait_for_assignment()
        return await super()._wait_next_records(timeout)


def _drain_through_a_group_error(error: BaseException) -> tuple[list[list[int]], BorrowedCoordinator]:
    seen: list[list[int]] = []

    async def main() -> BorrowedCoordinator:
        app = ScriptedApp()
        coordinator = BorrowedCoordinator()
        consumer = app.consumer = GroupFailingConsumer(app, [{TP("orders", 0): [0, 1]}], coordinator)  # type: ignore[assignment]

        async def on_batch(records: list[Record]) -> None:
            seen.append([r.offset for r in records])

        read_in_batches(app, is_input=lambda topic: topic == "orders", on_batch=on_batch)
        coordinator._coordination_task = asyncio.ensure_future(coordinator.routine(error))
        try:
            await asyncio.wait_for(consumer._drain_messages(type("Fetcher", (), {"_stopped": _Flag()})()), 5)  # type: ignore[attr-defined]
        finally:
            await asyncio.wait_for(asyncio.shield(coordinator._coordination_task), 1)
        return coordinator

    return seen, asyncio.run(main())


def test_a_fetch_aborted_by_a_failed_rebalance_takes_the_error_so_the_group_is_joined_again() -> None:
    """In CI the group leader's assignment raised right after a broker restart (faust's assignor met metadata
    missing a topic): aiokafka aborted the fetch with ``KafkaError('AssertionError()')`` and faust's Fetcher
    crashed; had no fetch been waiting, the coordinator would have waited for ever for someone to take it."""
    seen, coordinator = _drain_through_a_group_error(KafkaError(repr(AssertionError())))
    assert coordinator.joined_again and coordinator._pending_exception is None
    assert seen == [[0, 1]]  # the drain carried on with the next fetch


def test_a_fatal_group_error_still_stops_the_drain() -> None:
    with pytest.raises(GroupAuthorizationFailedError):
        _drain_through_a_group_error(GroupAuthorizationFailedError("yujing"))


def test_a_fetch_error_that_is_no_group_error_still_stops_the_drain() -> None:
    app = ScriptedApp()
    consumer = app.consumer = ScriptedConsumer(app, [])

    async def failing_fetch(timeout: float) -> Any:
        raise KafkaError("not a group error")

    async def on_batch(records: list[Record]) -> None:
        pass

    consumer._wait_next_records = failing_fetch  # type: ignore[method-assign]
    read_in_batches(app, is_input=lambda topic: True, on_batch=on_batch)
    with pytest.raises(KafkaError, match="not a group error"):
        asyncio.run(consumer._drain_messages(type("Fetcher", (), {"_stopped": _Flag()})()))  # type: ignore[attr-defined]
