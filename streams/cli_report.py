"""``yujing report --since … --until …``: the risk team's periodic report from ClickHouse."""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path
from typing import Any

from rich.console import Console

from streams.config import ConfigError, load_config

__all__ = ["add_report_command"]

err = Console(stderr=True)
_CST = dt.timezone(dt.timedelta(hours=8))


def _when(text: str) -> dt.datetime:
    value = dt.datetime.fromisoformat(text)
    return value if value.tzinfo else value.replace(tzinfo=_CST)


def cmd_report(args: argparse.Namespace) -> int:
    from rules import load_rules
    from rules.types.sla import SlaRule
    from sinks.clickhouse import ClickHouseSink
    from streams.report import collect, write_report

    try:
        config = load_config(args.config)
        since = _when(args.since)
        until = _when(args.until) if args.until else since + dt.timedelta(days=7)
    except (ConfigError, ValueError) as exc:
        err.print(f"[red]{exc} (times like 2026-03-02 or 2026-03-02T08:00+08:00; UTC+8 unless an offset is given)[/red]")
        return 2
    url = args.clickhouse or config.clickhouse.url
    if not url:
        err.print("[red]give --clickhouse URL (or clickhouse.url in the config): the report reads the alerts stored there[/red]")
        return 2
    rules = load_rules(args.rules or config.rules.dir).rules
    sla = sorted(r.rule_id for r in rules if isinstance(r, SlaRule))
    sink = ClickHouseSink(url, connect=False, max_retries=2, backoff=0.5)
    try:
        data = collect(sink.client(), sink.database, since, until, sla_rules=sla, rate_rule=args.rate_rule)
    except Exception as exc:
        err.print(f"[red]cannot read {url}: {str(exc).splitlines()[0]}[/red]")
        return 2
    finally:
        sink.close()
    md, page = write_report(data, Path(args.out))
    err.print(f"{data.totals['alerts']:,} alerts ({data.totals['previous']:,} in the previous period): {md} and {page}")
    return 0


def add_report_command(sub: Any) -> None:
    """Register ``report`` on the main parser's subparsers."""
    p = sub.add_parser("report", help="the risk team's report for a period, from ClickHouse (Markdown and HTML with charts)")
    p.add_argument("--since", required=True, help="start, e.g. 2026-03-02 (UTC+8 unless an offset is given)")
    p.add_argument("--until", help="end (default: a week after --since)")
    p.add_argument("--clickhouse", help="ClickHouse URL (default: clickhouse.url of the config)")
    p.add_argument("--rules", help="rules directory, to know which rules are SLA rules (default: the configured one)")
    p.add_argument("--rate-rule", default="service-rate", help="the ratio rule giving complaints per 10,000 orders")
    p.add_argument("--out", default="out/report", help="directory for report.md, its charts and report.html")
    p.set_defaults(func=cmd_report)
