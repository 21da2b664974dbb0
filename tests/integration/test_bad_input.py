"""Poison at 10 % of the traffic (1,111 malformed messages mixed into 10,000 good ones): each bad one dead-lettered with a
reason, each good one processed. (What the poison costs in throughput is measured in ``bench/``.)"""

from __future__ import annotations

import json
import random
from collections import Counter
from pathlib import Path

import pytest

from streams.simulator import SimConfig, simulate
from tests.integration.harness import Worker, create_topics, publish, sim_records
from tests.integration.servers import TansuBroker, wait_for
from yujing.events import event_kind

pytestmark = pytest.mark.integration
PREFIX = "bad-"
BAD = 1111  # 10 % of 11,111


def malformed(rng: random.Random, good: dict, i: int) -> tuple[str, bytes | None, bytes, str]:
    """One bad message (topic, key, value, expected reason category) built from a good event."""
    topic = event_kind(good["event_type"]) or "orders"
    key = good["customer_id"].encode()
    kind = i % 10
    bad = dict(good, event_id=f"bad-{i}")
    if kind == 0:
        return topic, key, b"this is not json " + str(i).encode(), "invalid_json"
    if kind == 1:
        return topic, key, json.dumps(bad).encode()[:-7], "invalid_json"
    if kind == 2:
        return topic, key, b'{"event_id": "\xff\xfe' + str(i).encode() + b'"}', "invalid_utf8"
    if kind == 3:
        bad["ts"] = 1700000000
        return topic, key, json.dumps(bad).encode(), "wrong_type"
    if kind == 4:
        bad.pop("customer_id")
        return topic, None, json.dumps(bad).encode(), "missing_field"
    if kind == 5:
        bad["event_type"] = rng.choice(["order.teleported", "refund.denied", "complaint.deleted"])
        return topic, key, json.dumps(bad).encode(), "unknown_event_type"
    if kind == 6:
        return (
            "complaints",
            key,
            json.dumps(
                {**bad, "event_type": "complaint.opened", "complaint_id": f"x{i}", "text": "断网" * 175_000}, ensure_ascii=False
            ).encode(),
            "too_long",
        )
    if kind == 7:
        return topic, key, json.dumps([bad]).encode(), "not_an_object"
    if kind == 8:
        bad["tier"] = "diamond"
        return topic, key, json.dumps(bad).encode(), "invalid_value"
    return topic, b"someone-else", json.dumps(bad).encode(), "key_mismatch"


def test_bad_messages_are_dead_lettered_and_good_ones_processed(workdir: Path, broker: TansuBroker) -> None:
    sim = simulate(
        SimConfig(seed=21, customers=1500, orders_per_day=1300, complaints_per_day=700, bills_per_day=200, history_days=2, days=1)
    )
    good = sim_records(sim, prefix=PREFIX)[:10_000]
    assert len(good) == 10_000
    rng = random.Random(5)
    bad = [malformed(rng, sim.events[rng.randrange(10_000)], i) for i in range(BAD)]
    expected_reasons = Counter(reason for *_, reason in bad)
    mixed: list[tuple[str, bytes | None, bytes]] = list(good)
    for topic, key, value, _ in bad:
        mixed.insert(rng.randrange(len(mixed) + 1), (PREFIX + topic, key, value))
    create_topics(broker.bootstrap, prefix=PREFIX)
    publish(broker.bootstrap, mixed)
    worker = Worker(workdir, broker.bootstrap, app_id="yujing-bad", prefix=PREFIX)
    worker.start()
    try:
        wait_for(
            lambda: worker.sum("yujing_events_total") >= 10_000 + BAD, 240, lambda: f"all {10_000 + BAD:,} messages read\n{worker.tail()}"
        )
        assert worker.sum("yujing_events_total", outcome="accepted") == 10_000
        assert worker.sum("yujing_events_total", outcome="dead_letter") == BAD
        by_reason = Counter({r: int(worker.sum("yujing_dead_letters_total", reason=r)) for r in expected_reasons})
        assert by_reason == expected_reasons
        letters = read_dead_letters(broker.bootstrap, BAD)
        assert len(letters) == BAD
        assert all(
            h.get("yujing.dlq.reason") and h.get("yujing.dlq.category") and h.get("yujing.dlq.offset") is not None for _, h in letters
        )
        originals = Counter(value for value, _ in letters)
        assert originals == Counter(value for _, _, value, _ in bad)  # the original bytes, each once
        assert worker.alive()
    finally:
        worker.stop()


def read_dead_letters(bootstrap: str, want: int) -> list[tuple[bytes, dict[str, str]]]:
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(
        *(f"{PREFIX}{t}.dlq" for t in ("orders", "billing", "complaints")),
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        group_id=None,
        consumer_timeout_ms=5000,
        fetch_max_bytes=16 * 1024 * 1024,
        max_partition_fetch_bytes=16 * 1024 * 1024,
    )
    out = []
    for message in consumer:
        out.append((message.value, {k: v.decode() for k, v in message.headers}))
        if len(out) >= want + 50:
            break
    consumer.close()
    return out
