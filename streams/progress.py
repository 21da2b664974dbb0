"""The progress bar of a local run (``yujing run``, ``yujing backtest``): how far, how fast, and what time it is in the data.

A month of a province's history takes minutes: the person waiting wants the share
of the input read, the events per second, and the simulated time the engine has
reached (the latest event time seen, in UTC+8), not a silent terminal.
"""

from __future__ import annotations

import datetime as dt
import time
from types import TracebackType
from typing import TYPE_CHECKING

from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeRemainingColumn

if TYPE_CHECKING:
    from streams.engine import Engine
    from streams.local import RunStats

__all__ = ["RunProgress", "simulated_time"]

LOCAL = dt.timezone(dt.timedelta(hours=8))


def simulated_time(engine: Engine) -> float | None:
    """The latest event time the engine has seen on any partition and stream (epoch seconds), or ``None``."""
    latest = [ts for streams in engine.watermarks.max_ts.values() for ts in streams.values()]
    return max(latest) if latest else None


class RunProgress:
    """A transient bar on ``console`` (shown only on a terminal): input read, events/s, simulated time.

    ``total`` is the input's size in ``unit`` (``bytes`` of a file, or ``events`` of a list),
    ``None`` when unknown (stdin). Give :meth:`advance_bytes` to the line reader of a file and
    :meth:`on_batch` to :meth:`streams.local.LocalRunner.run`.

    >>> from rich.console import Console
    >>> from streams.engine import DictBackend, Engine, EngineConfig
    >>> from streams.local import RunStats
    >>> with RunProgress(Console(file=None, force_terminal=False), Engine([], DictBackend(), EngineConfig()), "run", 10, "events") as bar:
    ...     bar.on_batch(RunStats(events=10), 10)
    >>> bar.events
    10
    """

    def __init__(self, console: Console, engine: Engine, label: str, total: float | None, unit: str = "bytes") -> None:
        self.engine = engine
        self.unit = unit
        count = DownloadColumn() if unit == "bytes" else MofNCompleteColumn()
        self.progress = Progress(
            TextColumn(label),
            BarColumn(),
            count,
            TextColumn("{task.fields[rate]}"),
            TextColumn("{task.fields[at]}"),
            TimeRemainingColumn(),
            console=console,
            transient=True,
            disable=not console.is_terminal,
        )
        self.task: TaskID = self.progress.add_task(label, total=total, rate="", at="")
        self.started = time.perf_counter()
        self.events = 0

    def __enter__(self) -> RunProgress:
        self.started = time.perf_counter()
        self.progress.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None) -> None:
        self.progress.stop()

    def advance_bytes(self, n: int) -> None:
        self.progress.advance(self.task, n)

    def on_batch(self, stats: RunStats, n: int) -> None:
        """After each batch: the rate so far and the simulated time reached."""
        self.events = stats.events + stats.dead_letters
        elapsed = max(time.perf_counter() - self.started, 1e-9)
        at = simulated_time(self.engine)
        fields = {
            "rate": f"{self.events / elapsed:,.0f} events/s",
            "at": dt.datetime.fromtimestamp(at, LOCAL).strftime("data at %Y-%m-%d %H:%M (UTC+8)") if at is not None else "",
        }
        if self.unit == "events":
            self.progress.update(self.task, advance=n, **fields)
        else:
            self.progress.update(self.task, **fields)

    def rate(self) -> float:
        """Events (and dead letters) per second since the start."""
        return self.events / max(time.perf_counter() - self.started, 1e-9)
