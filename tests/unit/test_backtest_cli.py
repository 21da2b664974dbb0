"""``yujing backtest``: history through the engine, a per-rule table, a timeline as PNG and HTML."""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

from tests.helpers import VOLUMES
from tests.unit.test_cli import yujing


def _events(tmp_path: Path) -> Path:
    plain = tmp_path / "events.jsonl"
    done = yujing("simulate", "--customers", "800", *VOLUMES, "--history-days", "2", "--days", "1", "--out", str(plain))
    assert done.returncode == 0, done.stderr
    packed = tmp_path / "events.jsonl.gz"
    with gzip.open(packed, "wb") as fh:
        fh.write(plain.read_bytes() + b"{not json\n")
    return packed


def test_backtest_writes_alerts_a_table_and_a_timeline(tmp_path: Path) -> None:
    events = _events(tmp_path)
    out = tmp_path / "bt"
    done = yujing("backtest", "--events", str(events), "--out", str(out))
    assert done.returncode == 0, done.stderr
    alerts = [json.loads(line) for line in (out / "alerts.jsonl").read_text(encoding="utf-8").splitlines()]
    assert {"install-sla", "redline-complaint"} <= {a["rule_id"] for a in alerts}
    assert "install-sla" in done.stdout and "firing" in done.stdout  # the per-rule table
    assert re.search(r"rules over [\d,]+ events in [\d.]+s \([\d,]+ events/s\)", done.stdout), done.stdout[:300]  # the rate
    firing = sum(1 for a in alerts if a["status"] == "firing" and a["rule_id"] == "redline-complaint")
    assert any(line.split("│")[1:4] and "redline-compl" in line and f" {firing} " in line for line in done.stdout.splitlines())
    assert (out / "timeline.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    page = (out / "timeline.html").read_text(encoding="utf-8")
    assert "data:image/png;base64," in page and "redline-complaint" in page
    assert "1 lines were not valid events" in done.stdout
    assert json.loads((out / "dead-letters.jsonl").read_text(encoding="utf-8").splitlines()[0])["category"]


def test_from_and_to_select_by_event_time(tmp_path: Path) -> None:
    events = _events(tmp_path)
    everything, window = tmp_path / "all", tmp_path / "window"
    assert yujing("backtest", "--events", str(events), "--out", str(everything)).returncode == 0
    done = yujing("backtest", "--events", str(events), "--out", str(window), "--from", "2026-03-01T12:00", "--to", "2026-03-01T18:00")
    assert done.returncode == 0, done.stderr
    alerts = [json.loads(line) for line in (window / "alerts.jsonl").read_text(encoding="utf-8").splitlines()]
    total = len((everything / "alerts.jsonl").read_text(encoding="utf-8").splitlines())
    assert 0 < len(alerts) < total
    assert all(a["starts_at"] >= "2026-03-01T04:00" for a in alerts if a["rule_id"] == "redline-complaint")


def test_bad_arguments_are_explained(tmp_path: Path) -> None:
    done = yujing("backtest", "--events", str(tmp_path / "missing.jsonl"))
    assert done.returncode == 2 and "no such file" in done.stderr
    (tmp_path / "e.jsonl").write_text("")
    done = yujing("backtest", "--events", str(tmp_path / "e.jsonl"), "--from", "yesterday", "--out", str(tmp_path / "o"))
    assert done.returncode == 2 and "--from/--to" in done.stderr


def test_the_progress_bar_shows_the_rate_and_the_simulated_time() -> None:
    """What a terminal shows while a long backtest runs (rich renders the bar only on a terminal)."""
    import io

    from rich.console import Console

    from streams.engine import DictBackend, Engine, EngineConfig
    from streams.local import LocalRunner
    from streams.progress import RunProgress
    from streams.simulator.generator import SimConfig, simulate

    lines = list(simulate(SimConfig(seed=4, days=0.5, history_days=0.5, customers=300)).lines())
    engine = Engine([], DictBackend(), EngineConfig(idle_after=None))
    screen = io.StringIO()
    console = Console(file=screen, force_terminal=True, width=200)
    with RunProgress(console, engine, "backtest", len(lines), "events") as bar:
        LocalRunner.replaying(engine, []).run(lines, on_batch=bar.on_batch)
        bar.progress.refresh()
    shown = screen.getvalue()
    assert f"{len(lines)}/{len(lines)}" in shown and "events/s" in shown
    assert re.search(r"data at 2026-03-0\d \d\d:\d\d \(UTC\+8\)", shown), shown[-400:]
    assert bar.events == len(lines) and bar.rate() > 0
