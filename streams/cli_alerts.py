"""``yujing alert open | ack | assign | note``: the risk team's work list, kept in ClickHouse.

``open`` lists the alerts still firing (the ``alerts_open`` view: one-off alerts
close with their ticket or expire, see :mod:`streams.engine.lifecycle`), with who
acknowledged and who owns each; ``ack``, ``assign`` and ``note`` append to
``alert_actions``, which the view and the Grafana "Open work" panel read.
"""

from __future__ import annotations

import argparse
import getpass
from typing import Any

from rich.console import Console
from rich.table import Table

from streams.config import ConfigError, load_config

__all__ = ["add_alert_commands"]

out = Console(soft_wrap=True)
err = Console(stderr=True)


def _sink(args: argparse.Namespace) -> Any:
    from sinks.clickhouse import ClickHouseSink

    try:
        url = args.clickhouse or load_config(args.config).clickhouse.url
    except ConfigError as exc:
        err.print(f"[red]{exc}[/red]", highlight=False)
        raise SystemExit(2) from None
    if not url:
        err.print("[red]give --clickhouse URL (or clickhouse.url in the config): the work list is kept there[/red]")
        raise SystemExit(2)
    return ClickHouseSink(url, connect=False, max_retries=2, backoff=0.5)


def cmd_open(args: argparse.Namespace) -> int:
    sink = _sink(args)
    where, params = [], {}
    if args.region:
        where.append("region = %(region)s")
        params["region"] = args.region
    if args.unacked:
        where.append("NOT acked")
    query = (
        f"SELECT alert_id, severity, rule_id, region, starts_at, acked_by, assignee, summary FROM {sink.database}.alerts_open"
        + (f" WHERE {' AND '.join(where)}" if where else "")
        + " ORDER BY severity = 'critical' DESC, starts_at LIMIT %(limit)s"
    )
    try:
        rows = sink.client().execute(query, {**params, "limit": args.limit})
    except Exception as exc:
        err.print(f"[red]cannot read {sink.url}: {str(exc).splitlines()[0]}[/red]", highlight=False)
        return 2
    finally:
        sink.close()
    table = Table(title=f"open alerts ({len(rows)} shown)")
    for col in ("alert_id", "severity", "rule", "region", "since (UTC)", "acked by", "owner", "summary"):
        table.add_column(col, overflow="fold")
    for alert_id, severity, rule_id, region, starts_at, acked_by, assignee, summary in rows:
        table.add_row(alert_id, severity, rule_id, region, f"{starts_at:%Y-%m-%d %H:%M}", acked_by, assignee, summary)
    out.print(table)
    return 0


def _record(args: argparse.Namespace, action: str, assignee: str = "") -> int:
    sink = _sink(args)
    try:
        known = sink.client().execute(f"SELECT count() FROM {sink.database}.alerts WHERE alert_id = %(id)s", {"id": args.alert_id})
        if not known[0][0]:
            err.print(f"[red]no alert {args.alert_id} in {sink.database}.alerts (see `yujing alert open`)[/red]", highlight=False)
            return 2
        sink.record_action(args.alert_id, action, args.by, assignee=assignee, note=args.note or "")
    except Exception as exc:
        err.print(f"[red]cannot write to {sink.url}: {str(exc).splitlines()[0]}[/red]", highlight=False)
        return 2
    finally:
        sink.close()
    out.print(f"{action} {args.alert_id} by {args.by}" + (f" → {assignee}" if assignee else ""))
    return 0


def cmd_ack(args: argparse.Namespace) -> int:
    return _record(args, "ack")


def cmd_assign(args: argparse.Namespace) -> int:
    return _record(args, "assign", assignee=args.to)


def cmd_note(args: argparse.Namespace) -> int:
    if not args.note:
        err.print("[red]a note needs --note TEXT[/red]")
        return 2
    return _record(args, "note")


def add_alert_commands(sub: Any) -> None:
    """Register ``alert`` on the main parser's subparsers."""
    p = sub.add_parser("alert", help="the open work list in ClickHouse: list, acknowledge, assign, annotate alerts")
    asub = p.add_subparsers(dest="alert_command", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--clickhouse", help="ClickHouse URL (default: clickhouse.url of the config)")
    q = asub.add_parser("open", parents=[common], help="alerts still firing, with who acknowledged and who owns them")
    q.add_argument("--region")
    q.add_argument("--unacked", action="store_true", help="only those nobody acknowledged")
    q.add_argument("--limit", type=int, default=200)
    q.set_defaults(func=cmd_open)
    for name, func, text in (
        ("ack", cmd_ack, "acknowledge an alert: someone is on it"),
        ("assign", cmd_assign, "give an alert to someone"),
        ("note", cmd_note, "add a note to an alert"),
    ):
        q = asub.add_parser(name, parents=[common], help=text)
        q.add_argument("alert_id")
        q.add_argument("--by", default=getpass.getuser(), help="who (default: your login)")
        q.add_argument("--note", help="why, or what was done")
        if name == "assign":
            q.add_argument("--to", required=True, help="the new owner")
        q.set_defaults(func=func)
