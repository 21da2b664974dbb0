"""``yujing silence add | list | expire``: the silence log the runners follow (``alerting.silences``)."""

from __future__ import annotations

import argparse
import getpass
import time
from typing import Any

from rich.console import Console
from rich.table import Table

from sinks.http import HttpError
from streams.alerting.am_silences import AlertmanagerSilences
from streams.alerting.silences import SilenceFile, new_silence
from streams.config import ConfigError, load_config
from yujing.timeutil import format_rfc3339, parse_duration

__all__ = ["add_silence_commands"]

out = Console(soft_wrap=True)
err = Console(stderr=True)


def _log(args: argparse.Namespace) -> SilenceFile | AlertmanagerSilences:
    """Where silences live: ``--file``, else Alertmanager when the configuration says so (one place with its UI),
    else the configured log file."""
    if args.file:
        return SilenceFile(args.file)
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        err.print(f"[red]{exc}[/red]")
        raise SystemExit(2) from None
    if config.silences_in_alertmanager():
        return AlertmanagerSilences(config.alertmanager.url)
    return SilenceFile(config.alerting.silences)


def _where(log: SilenceFile | AlertmanagerSilences) -> str:
    return f"Alertmanager ({log.api})" if isinstance(log, AlertmanagerSilences) else str(log.path)


def cmd_add(args: argparse.Namespace) -> int:
    log = _log(args)
    try:
        starts = time.time()
        ends = starts + parse_duration(args.duration)
        silence = new_silence(args.matchers, starts_at=starts, ends_at=ends, created_by=args.author, comment=args.comment)
    except ValueError as exc:
        err.print(f"[red]{exc}[/red]", highlight=False)
        return 2
    try:
        silence = log.add(silence)
    except HttpError as exc:
        err.print(f"[red]not added: {exc}[/red]", highlight=False)
        return 2
    out.print(f"silence {silence.id}: {', '.join(silence.matchers)} until {format_rfc3339(int(silence.ends_at))} (in {_where(log)})")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    log = _log(args)
    now = time.time()
    try:
        silences = sorted(log.current().values(), key=lambda s: s.starts_at)
    except HttpError as exc:
        err.print(f"[red]{exc}[/red]", highlight=False)
        return 2
    for problem in log.problems:
        err.print(f"[yellow]{problem}[/yellow]", highlight=False)
    shown = [s for s in silences if args.all or s.ends_at > now]
    table = Table(title=f"silences in {_where(log)}")
    for col in ("id", "state", "matchers", "starts", "ends", "by", "comment"):
        table.add_column(col, overflow="fold")
    for s in shown:
        state = "active" if s.active(now) else ("pending" if s.starts_at > now else "expired")
        span = (format_rfc3339(int(s.starts_at)), format_rfc3339(int(s.ends_at)))
        table.add_row(s.id, state, " ".join(s.matchers), *span, s.created_by, s.comment)
    out.print(table if shown else "no silences" + ("" if args.all else " in force (--all shows expired ones)"))
    return 0


def cmd_expire(args: argparse.Namespace) -> int:
    log = _log(args)
    try:
        log.expire(args.id, time.time())
    except KeyError as exc:
        err.print(f"[red]{exc.args[0]}[/red]")
        return 2
    except HttpError as exc:
        err.print(f"[red]{exc}[/red]", highlight=False)
        return 2
    out.print(f"silence {args.id} expired")
    return 0


def add_silence_commands(sub: Any) -> None:
    """Register ``silence`` and its subcommands on the main parser's subparsers."""
    parser = sub.add_parser("silence", help="silences: mute matching alerts for a while (recorded, not sent)")
    ssub = parser.add_subparsers(dest="silence_command", required=True)
    p = ssub.add_parser("add", help="add a silence, e.g. yujing silence add region=杭州 rule_id=install-sla --for 2h -c 'cable cut'")
    p.add_argument("matchers", nargs="+", help="name=value or name!=value (labels, or source, rule_id, severity, status)")
    p.add_argument("--for", dest="duration", default="1h", help="how long (e.g. 30m, 2h, 1d)")
    p.add_argument("-c", "--comment", default="", help="why")
    p.add_argument("--author", default=getpass.getuser(), help="who (default: the login name)")
    p.set_defaults(func=cmd_add)
    p = ssub.add_parser("list", help="silences in force (--all: expired too)")
    p.add_argument("--all", action="store_true")
    p.set_defaults(func=cmd_list)
    p = ssub.add_parser("expire", help="end a silence now")
    p.add_argument("id")
    p.set_defaults(func=cmd_expire)
    for p in ssub.choices.values():
        p.add_argument("--file", help="a silence log file (default: Alertmanager when alertmanager.url is set, else alerting.silences)")
