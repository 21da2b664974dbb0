"""The local runner: JSON Lines (plain or gzip) or the simulator in, the same engine and sinks out.

It serves ``yujing run``, backtests and rule tests. Events are placed in the
partition Kafka would give them, so per-partition watermarks, and therefore
alerts, are the same as in the worker. At the end of a finite input every
timer up to the last event time fires (``Engine.close_input``).
"""

from __future__ import annotations

import gzip
import itertools
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from streams.collector import few_collections
from streams.dead_letters import DeadLetterFile
from streams.pipeline import Pipeline, Record

if TYPE_CHECKING:
    from streams.engine import Engine
    from yujing.protocols import Sink

__all__ = ["LocalRunner", "RunStats", "read_event_lines"]


@dataclass
class RunStats:
    """Counts of one run."""

    events: int = 0
    dead_letters: int = 0
    alerts: int = 0
    batches: int = 0


def read_event_lines(path: str | Path, advance: Callable[[int], None] | None = None) -> Iterator[bytes]:
    """Non-empty lines of a JSON Lines file (``.gz`` decompressed; ``-`` is stdin).

    ``advance`` (files only) is told how many bytes of the file were read, for a progress bar.
    """
    if str(path) == "-":
        import sys

        for line in sys.stdin.buffer:
            if line.strip():
                yield line.rstrip(b"\r\n")
        return
    with open(path, "rb") as raw:
        fh = gzip.GzipFile(fileobj=raw) if str(path).endswith(".gz") else raw
        last = 0
        for n, line in enumerate(fh):
            if advance is not None and n % 2000 == 0:
                pos = raw.tell()
                advance(pos - last)
                last = pos
            if line.strip():
                yield line.rstrip(b"\r\n")
        if advance is not None:
            advance(raw.tell() - last)


class LocalRunner:
    """Feeds lines through a :class:`Pipeline` in batches.

    >>> from streams.engine import DictBackend, Engine, EngineConfig
    >>> from streams.decode import Decoder
    >>> runner = LocalRunner(Pipeline(Engine([], DictBackend(), EngineConfig(idle_after=None)),
    ...     Decoder({"orders": "orders"}), [], partitions=8), None)
    >>> runner.run([b"not json"]).dead_letters
    1
    """

    def __init__(self, pipeline: Pipeline, dead_letters: DeadLetterFile | None, batch_size: int = 1000) -> None:
        self.pipeline = pipeline
        self.dead_letters = dead_letters
        self.batch_size = batch_size

    @classmethod
    def replaying(cls, engine: Engine, sinks: Sequence[Sink], partitions: int = 8) -> LocalRunner:
        """A runner over the contract's topics, with no configuration and no dead-letter file
        (evaluations and benchmarks replaying generated events)."""
        from streams.decode import Decoder
        from yujing.events import TOPIC_KINDS

        return cls(Pipeline(engine, Decoder({kind: kind for kind in TOPIC_KINDS}), sinks, partitions=partitions), None)

    def records(self, lines: Iterable[bytes]) -> Iterator[Record]:
        infer = self.pipeline.decoder.infer_topic
        for offset, line in enumerate(lines):
            yield Record(infer(line), -1, offset, None, line)

    def run(self, lines: Iterable[bytes], on_batch: Callable[[RunStats, int], None] | None = None, close: bool = True) -> RunStats:
        stats = RunStats()
        records = self.records(lines)
        with few_collections():  # the rules' state is millions of objects without cycles: do not walk them every batch
            while chunk := list(itertools.islice(records, self.batch_size)):
                self.step(chunk, stats)
                if on_batch is not None:
                    on_batch(stats, len(chunk))
            if close:
                alerts = self.pipeline.engine.close_input()
                self.pipeline.deliver(alerts)
                self.pipeline.commit()
                stats.alerts += len(alerts)
        return stats

    def step(self, chunk: list[Record], stats: RunStats) -> list:
        pipeline = self.pipeline
        alerts, dead = pipeline.process(chunk)
        pipeline.deliver(alerts)
        if self.dead_letters is not None:
            self.dead_letters.write(dead)
        pipeline.commit()
        stats.events += len(chunk) - len(dead)
        stats.dead_letters += len(dead)
        stats.alerts += len(alerts)
        stats.batches += 1
        return alerts
