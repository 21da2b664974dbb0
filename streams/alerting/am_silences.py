"""Alertmanager's silences (API v2) as the one place to silence.

With an Alertmanager in the stack, a silence made in its UI, with ``amtool`` or
with ``yujing silence add`` is one silence: the workers read Alertmanager's
silences every ``alerting.silences_poll`` seconds and hold back the alerts they
match (recorded in ClickHouse as ``silenced:<Alertmanager's silence id>``), and
Alertmanager mutes its notifications with the same silence. Nothing is kept
twice, so the two cannot disagree.

Alertmanager's regular-expression matchers (``=~``, ``!~``) are matched
through RE2 (linear time, anchored as Alertmanager anchors them).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sinks.http import request_json
from streams.alerting.matchers import Matcher, parse_matchers
from streams.alerting.silences import Silence

__all__ = ["AlertmanagerSilences"]


def _epoch(text: str) -> float:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def _iso(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.UTC).isoformat().replace("+00:00", "Z")


def _matcher(m: dict[str, Any]) -> str:
    op = ("=" if m.get("isEqual", True) else "!=") if not m.get("isRegex") else ("=~" if m.get("isEqual", True) else "!~")
    return f"{m['name']}{op}{m['value']}"


class AlertmanagerSilences:
    """Reads, adds and expires silences in Alertmanager (``url`` is its base, e.g. ``http://alertmanager:9093``).

    >>> AlertmanagerSilences("http://am:9093/").api
    'http://am:9093/api/v2'
    """

    def __init__(self, url: str, timeout: float = 10.0) -> None:
        self.api = url.rstrip("/") + "/api/v2"
        self.timeout = timeout
        self.problems: list[str] = []

    def current(self) -> dict[str, Silence]:
        """Active and pending silences (expired ones mute nothing), by Alertmanager's id."""
        self.problems = []
        out = {}
        for item in request_json("GET", self.api + "/silences", timeout=self.timeout) or []:
            if item.get("status", {}).get("state") == "expired":
                continue
            try:
                matchers = [_matcher(m) for m in item["matchers"]]
                Silence(id=item["id"], matchers=matchers, starts_at=0, ends_at=1).parsed()  # every matcher readable
            except (KeyError, ValueError) as exc:
                self.problems.append(f"Alertmanager silence {item.get('id')}: skipped: {exc}")
                continue
            out[item["id"]] = Silence(
                id=item["id"],
                matchers=matchers,
                starts_at=_epoch(item["startsAt"]),
                ends_at=_epoch(item["endsAt"]),
                created_by=item.get("createdBy", ""),
                comment=item.get("comment", ""),
            )
        return out

    def add(self, silence: Silence) -> Silence:
        """Create ``silence`` in Alertmanager; returns it with Alertmanager's id."""
        matchers = parse_matchers(silence.matchers, regex=True)
        body = {
            "matchers": [_wire(m) for m in matchers],
            "startsAt": _iso(silence.starts_at),
            "endsAt": _iso(silence.ends_at),
            "createdBy": silence.created_by or "yujing",
            "comment": silence.comment or "(no comment)",
        }
        answer = request_json("POST", self.api + "/silences", body, timeout=self.timeout)
        return Silence(
            id=answer["silenceID"],
            matchers=silence.matchers,
            starts_at=silence.starts_at,
            ends_at=silence.ends_at,
            created_by=silence.created_by,
            comment=silence.comment,
        )

    def expire(self, silence_id: str, at: float = 0.0) -> None:
        if silence_id not in self.current():
            raise KeyError(f"no silence with id {silence_id} in force in Alertmanager")
        request_json("DELETE", f"{self.api}/silence/{silence_id}", timeout=self.timeout)


def _wire(m: Matcher) -> dict[str, Any]:
    return {"name": m.name, "value": m.value, "isRegex": m.op in ("=~", "!~"), "isEqual": m.op in ("=", "=~")}
