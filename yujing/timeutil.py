"""Durations and timestamps: parsing ``48h``-style durations, RFC 3339 formatting."""

from __future__ import annotations

import datetime as dt
import re

__all__ = ["format_duration", "format_rfc3339", "parse_duration", "to_datetime"]

_DURATION = re.compile(r"^\s*(?:(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w))+\s*$")
_PART = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}


def parse_duration(text: str | int | float) -> float:
    """Seconds in a duration such as ``90s``, ``15m``, ``48h``, ``1d12h`` or a bare number of seconds.

    >>> parse_duration("1h30m")
    5400.0
    """
    if isinstance(text, bool):
        raise ValueError(f"not a duration: {text!r}")
    if isinstance(text, int | float):
        return float(text)
    if not isinstance(text, str) or not _DURATION.match(text):
        raise ValueError(f"not a duration: {text!r} (use e.g. 90s, 15m, 48h, 7d)")
    return sum(float(n) * _UNIT_SECONDS[u] for n, u in _PART.findall(text))


def to_datetime(epoch_seconds: float) -> dt.datetime:
    """A UTC datetime from seconds since the epoch."""
    return dt.datetime.fromtimestamp(epoch_seconds, tz=dt.UTC)


def format_rfc3339(epoch_seconds: float) -> str:
    """RFC 3339 text (UTC, ``Z``) for seconds since the epoch."""
    return to_datetime(epoch_seconds).isoformat().replace("+00:00", "Z")


def format_duration(seconds: float) -> str:
    """``14h24m``, ``45m``, ``3h``, ``2d3h``: a span as people read it (the time left, an incident's span).

    >>> format_duration(51840), format_duration(2700), format_duration(10800), format_duration(183600)
    ('14h24m', '45m', '3h', '2d3h')
    """
    minutes = max(0, round(seconds / 60))
    days, rest = divmod(minutes, 1440)
    hours, mins = divmod(rest, 60)
    if days:
        return f"{days}d{hours}h" if hours else f"{days}d"
    if hours:
        return f"{hours}h{mins:02d}m" if mins else f"{hours}h"
    return f"{mins}m"
