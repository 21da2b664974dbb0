"""Poison at 10 % of the traffic (1,111 malformed messages mixed into 10,000 good ones): each bad one dead-lettered with a
reason, each good one processed. (What the poison costs in throughput is measured in ``bench/``.)"""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

import pytest

from streams.simulator import SimConfig, simulate
from tests.integration.harness import Worker, create_topics, malformed, publish, read_dead_letters, sim_records
from tests.integration.servers import TansuBroker, wait_for

pytestmark = pytest.mark.integration
PREFIX = "bad-"
BAD = 1111  # 10 % of 11,111


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
        letters = read_dead_letters(broker.bootstrap, PREFIX, BAD)
        assert len(letters) == BAD
        assert all(
            h.get("yujing.dlq.reason") and h.get("yujing.dlq.category") and h.get("yujing.dlq.offset") is not None for _, h in letters
        )
        originals = Counter(value for value, _ in letters)
        assert originals == Counter(value for _, _, value, _ in bad)  # the original bytes, each once
        assert worker.alive()
    finally:
        worker.stop()
