"""Asks the broker where the first record at or after an offset is, for :mod:`streams.positions`.

A consumer of its own, outside any consumer group (it commits nothing and
joins nothing), started on first use: gaps are rare, so most workers never open it.
"""

from __future__ import annotations

import logging
from typing import Any

__all__ = ["OffsetProbe"]

log = logging.getLogger(__name__)


class OffsetProbe:
    """``await probe(topic, partition, offset)``: the offset of the first record at or after ``offset``.

    ``None`` when the broker returns nothing within ``timeout`` (at the end of the
    partition, or slow): the caller then assumes records were lost and reads again.
    """

    def __init__(self, bootstrap: str, timeout: float = 5.0) -> None:
        self.bootstrap = bootstrap
        self.timeout = timeout
        self.consumer: Any = None

    async def __call__(self, topic: str, partition: int, offset: int) -> int | None:
        from aiokafka import TopicPartition

        if self.consumer is None:
            from aiokafka import AIOKafkaConsumer

            self.consumer = AIOKafkaConsumer(
                bootstrap_servers=self.bootstrap, group_id=None, enable_auto_commit=False, auto_offset_reset="earliest"
            )
            await self.consumer.start()
        tp = TopicPartition(topic, partition)
        self.consumer.assign([tp])
        self.consumer.seek(tp, offset)
        try:
            batch = await self.consumer.getmany(tp, timeout_ms=int(self.timeout * 1000), max_records=1)
        except Exception:
            log.warning("could not probe %s[%d] at %d", topic, partition, offset, exc_info=True)
            return None
        records = batch.get(tp, [])
        return records[0].offset if records else None

    async def close(self) -> None:
        if self.consumer is not None:
            consumer, self.consumer = self.consumer, None
            await consumer.stop()
