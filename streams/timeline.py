"""The alert timeline of a backtest: one row per rule, a mark per firing alert, as PNG and as an HTML page.

The HTML page is self-contained (the PNG inlined, the per-rule table and the
alerts listed), so it can be mailed to a rule author or attached to a ticket.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
from collections.abc import Sequence
from pathlib import Path

from streams.backtest import BacktestSummary, row_name
from yujing.alerts import Alert

__all__ = ["write_html", "write_png"]

_SEVERITY_COLOURS = {"critical": "#c0392b", "major": "#e67e22", "minor": "#f1c40f", "info": "#3498db"}
_LOCAL = dt.timezone(dt.timedelta(hours=8))


def timeline_points(summary: BacktestSummary) -> list[tuple[dt.datetime, int, str]]:
    """(local time, row index, severity) of every firing alert: a warning on its ``rule (warning)`` row."""
    index = {r.rule_id: i for i, r in enumerate(summary.rules)}
    return [(a.starts_at.astimezone(_LOCAL), index[row_name(a)], a.severity) for a in summary.alerts if a.status == "firing"]


def write_png(summary: BacktestSummary, path: Path, title: str = "Yujing backtest") -> Path:
    """Draw firing alerts per rule over event time (UTC+8), coloured by severity, with an hourly count below."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    plt.rcParams["font.sans-serif"] = ["Noto Sans CJK SC", "WenQuanYi Zen Hei", "DejaVu Sans"]
    rules = [r.rule_id for r in summary.rules]
    firing = [a for a in summary.alerts if a.status == "firing"]
    height = max(3.0, 1.2 + 0.45 * len(rules))
    fig, (top, bottom) = plt.subplots(
        2, 1, figsize=(12, height + 2.2), sharex=True, gridspec_kw={"height_ratios": [height, 2.2]}, constrained_layout=True
    )
    for severity, colour in _SEVERITY_COLOURS.items():
        points = [(at, row) for at, row, of in timeline_points(summary) if of == severity]
        if points:
            xs, ys = zip(*points, strict=True)
            top.scatter(xs, ys, s=18, color=colour, label=severity, alpha=0.75, edgecolors="none")
    top.set_yticks(range(len(rules)), [f"{r.rule_id} ({r.firing})" for r in summary.rules])
    top.set_ylim(-0.7, max(len(rules), 1) - 0.3)
    top.invert_yaxis()
    top.grid(axis="x", alpha=0.3)
    top.set_title(f"{title}: {len(firing)} alerts from {summary.stats.events:,} events")
    if firing:
        top.legend(loc="upper right", fontsize=8, title="severity")
        times = [a.starts_at.astimezone(_LOCAL) for a in firing]
        bins = max(1, int((max(times) - min(times)).total_seconds() // 3600) + 1)
        bottom.hist(times, bins=min(bins, 24 * 60), color="#34495e")
    bottom.set_ylabel("alerts / hour")
    bottom.xaxis.set_major_formatter(mdates.DateFormatter("%m-%d %H:%M", tz=_LOCAL))
    bottom.set_xlabel("event time (UTC+8)")
    fig.autofmt_xdate()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _fmt(value: dt.datetime | None) -> str:
    return "" if value is None else value.astimezone(_LOCAL).strftime("%Y-%m-%d %H:%M")


def write_html(summary: BacktestSummary, png: Path, path: Path, title: str = "Yujing backtest", limit: int = 500) -> Path:
    """A self-contained page: the timeline, the per-rule table and the first ``limit`` alerts."""
    image = base64.b64encode(png.read_bytes()).decode()
    rows = "".join(
        f"<tr><td>{html.escape(r.rule_id)}</td><td>{r.severity}</td><td>{r.firing}</td><td>{r.resolved}</td>"
        f"<td>{_fmt(r.first)}</td><td>{_fmt(r.last)}</td></tr>"
        for r in summary.rules
    )
    shown: Sequence[Alert] = sorted(summary.alerts, key=lambda a: a.starts_at)[:limit]
    items = "".join(
        f"<tr><td>{_fmt(a.starts_at)}</td><td>{html.escape(a.rule_id)}</td><td>{a.status}</td>"
        f"<td style='color:{_SEVERITY_COLOURS.get(a.severity, '#000')}'>{a.severity}</td><td>{html.escape(a.summary)}</td></tr>"
        for a in shown
    )
    more = f"<p>… and {len(summary.alerts) - limit} more (see the JSON Lines file).</p>" if len(summary.alerts) > limit else ""
    page = f"""<!doctype html>
<html lang="zh"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:sans-serif;margin:2em}} table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:3px 8px;font-size:13px}} th{{background:#f4f4f4}}</style></head><body>
<h1>{html.escape(title)}</h1>
<p>{summary.stats.events:,} events, {summary.stats.dead_letters:,} dead letters, {len(summary.alerts):,} alerts.</p>
<img alt="alert timeline" src="data:image/png;base64,{image}" style="max-width:100%">
<h2>Per rule</h2>
<table><tr><th>rule</th><th>severity</th><th>firing</th><th>resolved</th><th>first (UTC+8)</th><th>last (UTC+8)</th></tr>{rows}</table>
<h2>Alerts</h2>
<table><tr><th>starts (UTC+8)</th><th>rule</th><th>status</th><th>severity</th><th>summary</th></tr>{items}</table>{more}
</body></html>
"""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page, encoding="utf-8")
    return path
