"""The faust-table state adapter, against a stand-in table (the real one is exercised by the worker tests)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from streams.engine.timers import TimerEntry
from streams.faust_state import FaustBackend
from tests.helpers import StandInTable


class Flushed:
    """Collects what a backend flushed, as the worker would send it."""

    def __init__(self, backend: FaustBackend) -> None:
        self.backend = backend
        self.messages: list[tuple[int, bytes, bytes | None]] = []

    def flush(self) -> None:
        self.backend.flush()
        self.messages.extend(self.backend.take_outbox())


def test_writes_are_batched_and_routed_to_their_partition() -> None:
    table = StandInTable()
    backend = FaustBackend(table)
    sent = Flushed(backend)
    timers = backend.namespace("~timers", TimerEntry)
    backend.use_partition(3)
    timers.set("a", TimerEntry(1.0, 3))
    timers.set("a", TimerEntry(2.0, 3))
    backend.use_partition(5)
    timers.set("b", TimerEntry(5.0, 5))
    assert timers.get("a") == TimerEntry(2.0, 3) and sent.messages == []
    sent.flush()
    assert [(p, k) for p, k, _ in sent.messages] == [(3, b"~timers\x1fa"), (5, b"~timers\x1fb")]
    assert table.data._key_partition == {b"~timers\x1fa": 3, b"~timers\x1fb": 5}
    timers.delete("a")
    sent.flush()
    assert sent.messages[-1] == (3, b"~timers\x1fa", None) and timers.get("a") is None


def test_a_key_set_and_deleted_in_one_batch_sends_nothing_but_a_stored_one_is_removed() -> None:
    table = StandInTable()
    backend = FaustBackend(table)
    sent = Flushed(backend)
    ns = backend.namespace("ns", int)
    ns.set("kept", 1)
    sent.flush()
    ns.set("brief", 2)  # set and gone within the batch: the store and the changelog never had it
    ns.delete("brief")
    ns.set("kept", 3)  # stored before: its delete must reach the changelog and the store
    ns.delete("kept")
    assert ns.get("brief") is None and ns.get("kept") is None and list(ns.items()) == []
    sent.flush()
    assert sent.messages == [(0, b"ns\x1fkept", b"\x01"), (0, b"ns\x1fkept", None)]
    assert b"ns\x1fkept" not in table.data.data
    ns.set("brief", 4)  # set again in a later batch: written as usual
    sent.flush()
    assert sent.messages[-1] == (0, b"ns\x1fbrief", b"\x04") and FaustBackend(table).namespace("ns", int).get("brief") == 4


def test_state_survives_a_new_backend_over_the_same_store() -> None:
    table = StandInTable()
    first = FaustBackend(table)
    first.namespace("ns", int).set("k", 7)
    first.flush()
    again = FaustBackend(table)
    assert again.namespace("ns", int).get("k") == 7
    assert list(again.namespace("ns", int).items()) == [("k", 7)]


def test_each_partition_clock_is_written_to_its_own_partition() -> None:
    from streams.engine import Engine, EngineConfig
    from tests.helpers import order, to_event

    table = StandInTable()
    backend = FaustBackend(table)
    sent = Flushed(backend)
    engine = Engine([], backend, EngineConfig(idle_after=None))
    engine.process([(2, to_event(order("created", 0))), (6, to_event(order("created", 1, order_id="b")))])
    engine.commit()
    sent.messages.extend(backend.take_outbox())
    clocks = {key: partition for partition, key, _ in sent.messages if key.startswith(b"~watermarks")}
    assert clocks == {b"~watermarks\x1f2": 2, b"~watermarks\x1f6": 6}


def test_clocks_are_sent_after_the_state_they_cover() -> None:
    import asyncio

    from streams.engine import Engine, EngineConfig
    from streams.engine.engine import WATERMARK_NAMESPACE
    from tests.helpers import SLA_RULE, order, rules_from, to_event

    class Producer:
        def __init__(self) -> None:
            self.log: list[tuple[str, bytes]] = []

        async def send_wave(self, topic, wave, tail=()):  # type: ignore[no-untyped-def]
            self.log.extend(("send", key) for _, key, _ in [*wave, *tail])
            return []

    import tempfile
    from pathlib import Path

    rules = rules_from(Path(tempfile.mkdtemp()), SLA_RULE)
    backend = FaustBackend(StandInTable(), markers=(WATERMARK_NAMESPACE,))
    engine = Engine(rules, backend, EngineConfig(idle_after=None))
    engine.process([(1, to_event(order("created", 0)))])
    engine.commit()
    producer = Producer()
    asyncio.run(backend.send_changelog(producer))
    keys = [k for what, k in producer.log if what == "send"]
    assert keys[-1] == b"~watermarks\x1f1" and all(not k.startswith(b"~watermarks") for k in keys[:-1])


def test_undelivered_alerts_are_sent_before_the_dedup_entry_that_remembers_them() -> None:
    """Killed mid-send, a worker must not have stored an alert as raised without storing it as still to deliver."""
    import asyncio
    import threading

    from sinks.base import RetryingSink
    from sinks.outbox import OUTBOX_PREFIX, BufferedSink
    from streams.decode import Decoder
    from streams.engine import Engine, EngineConfig
    from streams.engine.engine import WATERMARK_NAMESPACE
    from streams.pipeline import Pipeline, Record
    from tests.helpers import TOPICS, complaint
    from tests.unit.test_alert_manager import Scripted

    class Down(RetryingSink):
        name = "clickhouse"
        stop = threading.Event()

        def write_chunk(self, alerts):  # type: ignore[no-untyped-def]
            if not self.stop.wait(5):  # down until the test ends
                raise ConnectionError("down")

    sent: list[bytes] = []

    class Producer:
        async def send_wave(self, topic, wave, tail=()):  # type: ignore[no-untyped-def]
            sent.extend(key for _, key, _ in [*wave, *tail])
            return []

    backend = FaustBackend(StandInTable(), markers=(WATERMARK_NAMESPACE,), first=(OUTBOX_PREFIX,))
    sink = BufferedSink(Down(backoff=0.01))
    pipeline = Pipeline(Engine([Scripted()], backend, EngineConfig(idle_after=None)), Decoder(TOPICS), [sink])
    import msgspec

    record = Record("complaints", 2, 0, b"c-1", msgspec.json.encode(complaint("opened", 0, product="r")))
    alerts, _ = pipeline.process([record])
    pipeline.deliver(alerts)
    pipeline.commit()
    asyncio.run(backend.send_changelog(Producer()))
    outbox = [i for i, k in enumerate(sent) if k.startswith(OUTBOX_PREFIX.encode())]
    dedup = [i for i, k in enumerate(sent) if k.startswith(b"~alerts\x1f")]
    assert alerts and outbox and dedup and max(outbox) < min(dedup)
    Down.stop.set()
    sink.close(timeout=10)


def test_a_second_recovery_on_the_same_store_does_not_apply_an_old_journal() -> None:
    """A rebalance recovers again over the store the worker kept: the journal it finds must be the newest."""
    import asyncio

    class Producer:
        def __init__(self) -> None:
            self.log: list[tuple[int, bytes, bytes | None]] = []

        async def send_wave(self, topic, wave, tail=()):  # type: ignore[no-untyped-def]
            self.log.extend([*wave, *tail])
            return []

    producer = Producer()
    first = FaustBackend(StandInTable())
    first.use_partition(2)
    first.namespace("ns", int).set("k", 1)
    first.flush()
    asyncio.run(first.send_changelog(producer))
    recovered = StandInTable()  # faust's recovery: the changelog into a fresh store
    for partition, key, value in producer.log:
        assert value is not None
        recovered.data.data[key] = value
        recovered.data._key_partition[key] = partition
    backend = FaustBackend(recovered)
    backend.replay_journal()
    backend.use_partition(2)
    backend.namespace("ns", int).set("k", 2)
    backend.flush()
    asyncio.run(backend.send_changelog(producer))
    backend.replay_journal()  # recovered again (a rebalance), nothing read from the changelog this time
    assert backend.namespace("ns", int).get("k") == 2


def test_a_rocksdb_store_learns_how_far_into_the_changelog_it_holds(tmp_path: Path) -> None:
    """faust's rocksdb store records its changelog offset only for what faust sends; the backend sends its own,
    so it tells the store, and a restart on the same disk reads only the changelog written after."""
    import faust
    from faust.types import TP

    app = faust.App(f"t-rdb-{tmp_path.name}", broker="kafka://127.0.0.1:1", store="rocksdb://", datadir=str(tmp_path), topic_partitions=4)
    table = app.Table("state", key_type=bytes, value_type=bytes, partitions=4)
    backend = FaustBackend(table)

    class Acked:
        def __init__(self, partition: int, offset: int) -> None:
            self.partition, self.offset = partition, offset

    class Producer:
        def __init__(self) -> None:
            self.next: dict[int, int] = {}
            self.offsets: dict[bytes, int] = {}

        async def send_wave(self, topic, wave, tail=()):  # type: ignore[no-untyped-def]
            acks = []  # one per message: as many record batches as messages, the hardest case for the offsets
            for partition, key, _ in [*wave, *tail]:
                offset = self.next[partition] = self.next.get(partition, 40) + 1
                self.offsets[key] = offset
                acks.append(Acked(partition, offset))
            return acks

    for partition, key in ((2, "a"), (3, "b"), (3, "c")):
        backend.use_partition(partition)
        backend.namespace("ns", int).set(key, 1)
    backend.flush()
    producer = Producer()
    asyncio.run(backend.send_changelog(producer))
    topic = table.changelog_topic.get_topic_name()
    persisted = [table.data.persisted_offset(TP(topic, p)) for p in range(4)]
    # One before the first message of each partition's last wave (here the state, after the journal): a broker that
    # reports a partition's end as the start of its last batch (tansu) must never find the store ahead of the log,
    # and partition 3's last wave holds two messages (b and c), which may share one batch.
    first_b = min(producer.offsets[k] for k in producer.offsets if k.endswith((b"\x1fb", b"\x1fc")))
    assert persisted == [None, None, producer.offsets[next(k for k in producer.offsets if k.endswith(b"\x1fa"))] - 1, first_b - 1]
    assert producer.next[3] - persisted[3] == 2  # the restart reads that wave again: b and c


def test_a_namespace_read_whole_follows_writes_deletes_revocations_and_recoveries() -> None:
    """The memory store's per-namespace key index (the cohort stage reads its counts every step) must show
    exactly what a scan of the store would."""
    table = StandInTable()
    backend = FaustBackend(table)
    ns, other = backend.namespace("a", int), backend.namespace("b", int)

    def scan(name: str) -> list[tuple[str, int]]:
        prefix = (name + "\x1f").encode()
        decode = backend.namespaces[name].codec.decode
        return [(k[len(prefix) :].decode(), decode(v)) for k, v in table.data.data.items() if k.startswith(prefix)]

    for i in range(5):
        backend.use_partition(i % 2)
        ns.set(f"k{i}", i)
        other.set(f"k{i}", -i)
    backend.flush()
    assert list(ns.items()) == scan("a") and len(scan("a")) == 5  # the index is built here
    ns.delete("k1")
    ns.set("k9", 9)
    ns.set("k0", 10)
    backend.flush()
    assert list(ns.items()) == scan("a") == [("k0", 10), ("k2", 2), ("k3", 3), ("k4", 4), ("k9", 9)]
    table.data.data.pop(b"a\x1fk3")  # a revoked partition's key, dropped by faust
    assert list(ns.items()) == scan("a")
    table.data.data[b"a\x1fk7"] = backend.namespaces["a"].codec.encode(7)  # a recovery fills the store
    backend.replay_journal()
    assert list(ns.items()) == scan("a") and ("k7", 7) in list(ns.items())
    assert list(other.items()) == scan("b")
