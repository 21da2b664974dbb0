"""The alert record of ``docs/contracts/alerts.md`` and its deterministic id."""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Any, Literal

import msgspec

__all__ = ["SEVERITIES", "SOURCES", "Alert", "Severity", "Source", "Status", "alert_id"]

Source = Literal["rule", "hot_word", "cohort_spike"]
Severity = Literal["critical", "major", "minor", "info"]
Status = Literal["firing", "resolved"]
SEVERITIES: tuple[str, ...] = Severity.__args__  # type: ignore[attr-defined]
SOURCES: tuple[str, ...] = Source.__args__  # type: ignore[attr-defined]
#: A later status outranks an earlier one (dedup, and the ClickHouse row version).
STATUS_RANK: dict[str, int] = {"firing": 1, "resolved": 2}


class Alert(msgspec.Struct, kw_only=True):
    """One alert, identical in every sink.

    ``alert_id`` is derived from what the alert is about (rule, key, window),
    never from wall-clock time, so a replay or redelivery yields the same id.

    >>> a = Alert(alert_id=alert_id("r", "k"), source="rule", rule_id="r", rule_version="1",
    ...           severity="major", status="firing", starts_at=dt.datetime(2026, 3, 1, tzinfo=dt.timezone.utc),
    ...           detected_at=dt.datetime(2026, 3, 1, tzinfo=dt.timezone.utc), labels={}, summary="s", evidence={})
    >>> a.alert_id == alert_id("r", "k")
    True
    """

    alert_id: str
    source: Source
    rule_id: str
    rule_version: str
    severity: Severity
    status: Status
    starts_at: dt.datetime
    detected_at: dt.datetime
    ends_at: dt.datetime | None = None
    labels: dict[str, str]
    summary: str
    evidence: dict[str, Any]


def alert_id(rule_id: str, *parts: str) -> str:
    """Deterministic id of the condition ``parts`` (key, window start, …) of ``rule_id``."""
    digest = hashlib.blake2b("\x1f".join((rule_id, *parts)).encode(), digest_size=16)
    return digest.hexdigest()
