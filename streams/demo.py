"""``yujing demo``: a simulated day through the engine at accelerated speed, watched live.

No server is needed: the simulator feeds the engine in-process, alerts go to
the console and to a JSON Lines file, and the Prometheus metrics are served
on a port while it runs. The simulation starts with a few days of history
(orders placed before the day), replayed at full speed, so that the day
shows the SLA breaches those orders run into.
"""

from __future__ import annotations

import datetime as _dt
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console, Group
from rich.live import Live
from rich.panel import Panel
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from streams.local import LocalRunner, RunStats
from streams.pipeline import Pipeline
from streams.simulator import Simulation
from yujing.alerts import Alert
from yujing.timeutil import to_datetime

__all__ = ["DemoClock", "run_demo"]

_CST = _dt.timezone(_dt.timedelta(hours=8))
_SEVERITY_STYLE = {"critical": "bold red", "major": "yellow", "minor": "cyan", "info": "dim"}


class DemoClock:
    """Simulated wall clock: event time during the replay, then ``speed``× real time."""

    def __init__(self, start: float) -> None:
        self.sim_start = start
        self.real_start: float | None = None
        self.factor = 1.0
        self.catch_up = start

    def go_live(self, factor: float) -> None:
        self.factor = factor
        self.real_start = time.monotonic()

    def __call__(self) -> float:
        if self.real_start is None:
            return self.catch_up
        return self.sim_start + (time.monotonic() - self.real_start) * self.factor


@dataclass
class _View:
    events: Counter[str] = field(default_factory=Counter)
    alerts: Counter[tuple[str, str]] = field(default_factory=Counter)
    recent: deque[Alert] = field(default_factory=lambda: deque(maxlen=12))
    dead: int = 0


def _render(view: _View, clock: DemoClock, progress: Progress, metrics_url: str | None) -> Group:
    counters = Table(title="计数 counters", expand=True)
    counters.add_column("stream / rule")
    counters.add_column("count", justify="right")
    for name, n in sorted(view.events.items()):
        counters.add_row(f"events · {name}", str(n))
    counters.add_row("dead letters", str(view.dead))
    for (rule, status), n in sorted(view.alerts.items()):
        counters.add_row(f"alerts · {rule} · {status}", str(n), style="bold" if status == "firing" else "")
    recent = Table(title="最新预警 latest alerts", expand=True)
    for col in ("event time", "severity", "rule", "status", "summary"):
        recent.add_column(col, overflow="fold")
    for a in reversed(view.recent):
        recent.add_row(
            to_datetime(a.starts_at.timestamp()).astimezone(_CST).strftime("%m-%d %H:%M"),
            a.severity,
            a.rule_id,
            a.status,
            a.summary[:90],
            style=_SEVERITY_STYLE.get(a.severity, ""),
        )
    now = to_datetime(clock()).astimezone(_CST).strftime("%Y-%m-%d %H:%M")
    head = f"[b]预警 Yujing demo[/b] — simulated time {now} (UTC+8)" + (f" — metrics at {metrics_url}" if metrics_url else "")
    return Group(Panel(head), progress, counters, recent)


def run_demo(
    sim: Simulation,
    runner: LocalRunner,
    clock: DemoClock,
    *,
    seconds: float,
    console: Console,
    metrics_url: str | None,
) -> tuple[RunStats, _View]:
    """Replay history at full speed, then the day over ``seconds`` of real time."""
    pipeline: Pipeline = runner.pipeline
    view = _View()
    stats = RunStats()
    start = sim.config.start.timestamp()
    lines = list(sim.lines())
    times = [_dt.datetime.fromisoformat(e["ts"]).timestamp() for e in sim.events]
    kinds = [e["event_type"].split(".")[0] for e in sim.events]
    split = next((i for i, t in enumerate(times) if t >= start), len(times))
    day = sim.config.days * 86400.0
    progress = Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"), TimeRemainingColumn())
    history_task = progress.add_task("replaying history", total=split)
    day_task = progress.add_task("simulated day", total=day)
    interactive = console.is_terminal

    def take(i: int, j: int) -> None:
        chunk = list(runner.records(lines[i:j]))
        alerts = runner.step(chunk, stats)
        for k in kinds[i:j]:
            view.events[k] += 1
        show(alerts)

    def show(alerts: list[Alert]) -> None:
        for a in alerts:
            view.alerts[(a.rule_id, a.status)] += 1
            view.recent.append(a)
            if not interactive:
                console.print(f"[{a.severity}] {a.rule_id} {a.status}: {a.summary}", highlight=False, markup=False)
        view.dead = stats.dead_letters

    engine = pipeline.engine
    idle_after = engine.watermarks.idle_after
    engine.set_idle_advance(None)  # replaying history: wall time does not follow event time
    with Live(
        _render(view, clock, progress, metrics_url), console=console, refresh_per_second=4, transient=False, auto_refresh=interactive
    ) as live:
        for i in range(0, split, 2000):
            j = min(i + 2000, split)
            clock.catch_up = times[j - 1]
            take(i, j)
            progress.update(history_task, completed=j)
        clock.catch_up = start
        clock.go_live(day / seconds)
        engine.set_idle_advance(idle_after)
        i = split
        while True:
            now = clock()
            j = i
            while j < len(times) and times[j] <= now:
                j += 1
            if j > i:
                take(i, j)
                i = j
            tick_alerts = pipeline.tick()
            pipeline.deliver(tick_alerts)
            pipeline.commit()
            stats.alerts += len(tick_alerts)
            show(tick_alerts)
            progress.update(day_task, completed=min(day, now - start))
            if interactive:
                live.update(_render(view, clock, progress, metrics_url))
            if now >= start + day and i >= len(times):
                break
            time.sleep(0.05)
        live.update(_render(view, clock, progress, metrics_url))
    return stats, view


def summary_table(view: _View, sim: Simulation, alerts_path: Path | None) -> Table:
    """What the demo found, against the incidents it injected."""
    table = Table(title="总结 summary")
    table.add_column("what")
    table.add_column("value", justify="right")
    for name, n in sorted(view.events.items()):
        table.add_row(f"events · {name}", str(n))
    for (rule, status), n in sorted(view.alerts.items()):
        table.add_row(f"alerts · {rule} · {status}", str(n))
    for incident in sim.incidents:
        table.add_row(f"injected · {incident.kind} ({incident.labels.get('region', 'all regions')})", str(len(incident.keys)))
    if alerts_path:
        table.add_row("alerts written to", str(alerts_path))
    return table
