"""The offset probe against a real broker: where the first record at or after an offset is."""

from __future__ import annotations

import asyncio

import pytest

from streams.offset_probe import OffsetProbe
from streams.worker import ensure_topics
from tests.integration.harness import publish
from tests.integration.servers import TansuBroker

pytestmark = pytest.mark.integration


def test_the_probe_finds_each_record_and_nothing_past_the_end(broker: TansuBroker) -> None:
    topic = "probe-orders"
    ensure_topics(broker.bootstrap, [topic], 2)
    publish(broker.bootstrap, [(topic, b"k", b"record %d" % i) for i in range(12)])  # one key: one partition
    probe = OffsetProbe(broker.bootstrap, timeout=1.0)

    async def ask() -> tuple[dict[int, list[int | None]], list[int | None]]:
        try:
            found = {p: [await probe(topic, p, o) for o in (0, 5, 11, 12)] for p in (0, 1)}
            again = [await probe(topic, p, 3) for p in (0, 1)]  # the same consumer, moved between partitions
            return found, again
        finally:
            await probe.close()

    found, again = asyncio.run(ask())
    full, empty = (0, 1) if found[0][0] == 0 else (1, 0)
    assert found[full] == [0, 5, 11, None]
    assert found[empty] == [None, None, None, None]
    assert again[full] == 3 and again[empty] is None
