"""The report as files: ``report.md`` (with PNG charts beside it) and a self-contained ``report.html``."""

from __future__ import annotations

import base64
import datetime as dt
import html
from pathlib import Path
from typing import Any

from streams.report.data import ReportData, Table

__all__ = ["write_report"]


def _charts(data: ReportData, out: Path) -> list[tuple[str, Path]]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams["font.sans-serif"] = ["Noto Sans CJK SC", "WenQuanYi Zen Hei", "DejaVu Sans"]
    charts: list[tuple[str, Path]] = []

    fig, ax = plt.subplots(figsize=(9, 3.2), constrained_layout=True)
    days = [d.strftime("%m-%d") for d, _, _ in data.daily]
    ax.plot(days, [n for _, n, _ in data.daily], marker="o", color="#c0392b", label="this period")
    ax.plot(days, [p for _, _, p in data.daily], marker="o", color="#95a5a6", linestyle="--", label="previous period")
    ax.set_ylabel("alerts per day")
    ax.set_title("Alerts per day against the previous period")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    charts.append(("Alerts per day", _save(fig, out / "alerts-per-day.png", plt)))

    if data.top_rules:
        fig, ax = plt.subplots(figsize=(9, 0.4 * len(data.top_rules) + 1.2), constrained_layout=True)
        names = [r for r, _, _ in data.top_rules][::-1]
        ys = range(len(names))
        ax.barh([y + 0.2 for y in ys], [n for _, n, _ in data.top_rules][::-1], height=0.4, color="#e67e22", label="this period")
        ax.barh([y - 0.2 for y in ys], [p for _, _, p in data.top_rules][::-1], height=0.4, color="#bdc3c7", label="previous period")
        ax.set_yticks(list(ys), names)
        ax.set_xlabel("alerts")
        ax.set_title("Alerts by rule")
        ax.legend(fontsize=8)
        charts.append(("Alerts by rule", _save(fig, out / "alerts-by-rule.png", plt)))

    if data.by_tier:
        fig, ax = plt.subplots(figsize=(6, 3), constrained_layout=True)
        tiers = [t for t, _, _ in data.by_tier]
        xs = range(len(tiers))
        ax.bar([x - 0.2 for x in xs], [n for _, n, _ in data.by_tier], width=0.4, color="#c0392b", label="this period")
        ax.bar([x + 0.2 for x in xs], [p for _, _, p in data.by_tier], width=0.4, color="#bdc3c7", label="previous period")
        ax.set_xticks(list(xs), tiers)
        ax.set_ylabel("SLA breaches")
        ax.set_title("SLA breaches by tier")
        ax.legend(fontsize=8)
        charts.append(("SLA breaches by tier", _save(fig, out / "sla-by-tier.png", plt)))
    return charts


def _save(fig: Any, path: Path, plt: Any) -> Path:
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _cell(value: Any, tz: dt.tzinfo = dt.UTC) -> str:
    if isinstance(value, dt.datetime):  # ClickHouse gives UTC (naive or aware): shown in the report's time zone
        value = (value if value.tzinfo else value.replace(tzinfo=dt.UTC)).astimezone(tz)
        text = value.strftime("%Y-%m-%d %H:%M")
    else:
        text = str(value)
    return text.replace("|", "\\|").replace("\n", " ")


def _zone(data: ReportData) -> str:
    offset = data.since.strftime("%z") or "+0000"
    return f"UTC{offset[:3]}:{offset[3:]}"


def headline_change(data: ReportData) -> str:
    """This period against the previous one, per day over the days the previous period has data for."""
    t = data.totals
    days = (data.until - data.since).total_seconds() / 86400
    now, before = t.get("compared", t["alerts"]), t.get("compared_previous", t["previous"])
    if not before or data.previous_days <= 0:
        return "no data before" if data.data_since is not None else "no alerts before"
    change = f"{(now / days) / (before / data.previous_days) - 1:+.0%}"
    details = []
    if data.detectors_warm_from is not None:
        warm = data.detectors_warm_from.astimezone(data.since.tzinfo)
        details.append(f"rules only, as the detectors were still learning until {warm:%Y-%m-%d %H:%M}: {now:,} against {before:,}")
    else:
        details.append(f"{before:,} before")
    if data.data_since is not None:
        since = data.data_since.astimezone(data.since.tzinfo)
        details.append(f"the previous period has data on {data.previous_days:.1f} of its {days:.0f} days, from {since:%Y-%m-%d %H:%M}")
    return f"{change} a day against the previous period ({'; '.join(details)})"


def _held(data: ReportData) -> str:
    named = {
        "silenced": "silenced",
        "inhibited": "inhibited",
        "realert": "repeated (realert)",
        "rate_limited": "over a rate limit",
        "not_sent": "resolves of alerts that were not sent",
    }
    parts = [f"{n:,} {named.get(r, r.replace('_', ' '))}" for r, n in data.held_reasons]
    return f"{data.totals['held_back']:,} recorded but not sent" + (f": {', '.join(parts)}." if parts else ".")


def _markdown(data: ReportData, charts: list[tuple[str, Path]]) -> str:
    t = data.totals
    until = data.until.astimezone(data.since.tzinfo)
    lines = [
        f"# 预警周报 Yujing report: {data.since:%Y-%m-%d %H:%M} – {until:%Y-%m-%d %H:%M} ({_zone(data)})",
        "",
        f"- **{t['alerts']:,} alerts** ({headline_change(data)}); {t['serious']:,} critical or major; {t['still_firing']:,} still firing.",
        f"- {_held(data)}",
        "",
    ]
    for title, path in charts:
        lines += [f"![{title}]({path.name})", ""]
    for table in data.tables:
        lines += _md_table(table, data.since.tzinfo or dt.UTC, _zone(data))
    return "\n".join(lines) + "\n"


def _md_table(table: Table, tz: dt.tzinfo, zone: str) -> list[str]:
    out = [f"## {table.title}", ""]
    if table.note:
        out += [table.note, ""]
    if not table.rows:
        return [*out, "_Nothing in this period._", ""]
    out.append("| " + " | ".join(c.replace("(UTC)", f"({zone})") for c in table.columns) + " |")
    out.append("|" + "---|" * len(table.columns))
    out += ["| " + " | ".join(_cell(v, tz) for v in row) + " |" for row in table.rows]
    return [*out, ""]


def _html(data: ReportData, charts: list[tuple[str, Path]], markdown_head: str) -> str:
    t = data.totals
    images = "".join(
        f'<figure><img alt="{html.escape(title)}" src="data:image/png;base64,{base64.b64encode(path.read_bytes()).decode()}"></figure>'
        for title, path in charts
    )
    sections = []
    tz, zone = data.since.tzinfo or dt.UTC, _zone(data)
    for table in data.tables:
        body = (
            "<table><tr>"
            + "".join(f"<th>{html.escape(c.replace('(UTC)', f'({zone})'))}</th>" for c in table.columns)
            + "</tr>"
            + "".join("<tr>" + "".join(f"<td>{html.escape(_cell(v, tz))}</td>" for v in row) + "</tr>" for row in table.rows)
            + "</table>"
            if table.rows
            else "<p><em>Nothing in this period.</em></p>"
        )
        note = f"<p>{html.escape(table.note)}</p>" if table.note else ""
        sections.append(f"<h2>{html.escape(table.title)}</h2>{note}{body}")
    return f"""<!doctype html>
<html lang="zh"><head><meta charset="utf-8"><title>{html.escape(markdown_head)}</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:1100px}} table{{border-collapse:collapse;margin-bottom:1em}}
td,th{{border:1px solid #ccc;padding:3px 8px;font-size:13px}} th{{background:#f4f4f4}} img{{max-width:100%}}
.kpi{{display:inline-block;margin-right:2em;font-size:20px}}</style></head><body>
<h1>{html.escape(markdown_head)}</h1>
<p><span class="kpi"><b>{t["alerts"]:,}</b> alerts</span><span class="kpi">previous period <b>{t["previous"]:,}</b></span>
<span class="kpi"><b>{t["serious"]:,}</b> critical/major</span><span class="kpi"><b>{t["still_firing"]:,}</b> still firing</span>
<span class="kpi"><b>{t["held_back"]:,}</b> held back</span></p>
{images}
{"".join(sections)}
</body></html>
"""


def write_report(data: ReportData, out: Path) -> tuple[Path, Path]:
    """Write ``report.md`` with its charts and ``report.html`` into ``out``; returns both paths."""
    out.mkdir(parents=True, exist_ok=True)
    charts = _charts(data, out)
    markdown = _markdown(data, charts)
    md_path = out / "report.md"
    md_path.write_text(markdown, encoding="utf-8")
    html_path = out / "report.html"
    html_path.write_text(_html(data, charts, markdown.splitlines()[0].lstrip("# ")), encoding="utf-8")
    return md_path, html_path
