"""What the report says, read from ClickHouse's alert and score tables for a period and the one before it.

All counts read the latest row per alert (``FINAL``), so a replayed alert is
counted once. Complaints per 10,000 orders come from the ratio rule's scores
(each judged group's numerator and denominator); SLA breaches are the alerts
of the rule pack's ``sla`` rules, by the ``tier`` label.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

__all__ = ["ReportData", "Table", "collect"]

_SEVERITY_ORDER = "multiIf(severity = 'critical', 0, severity = 'major', 1, severity = 'minor', 2, 3)"


@dataclass
class Table:
    """One section's table: a title, its columns, its rows and a line saying how to read it."""

    title: str
    columns: list[str]
    rows: list[tuple[Any, ...]]
    note: str = ""


@dataclass
class ReportData:
    """Everything one report shows."""

    since: dt.datetime
    until: dt.datetime
    totals: dict[str, int] = field(default_factory=dict)  # this period, previous period, firing now, …
    daily: list[tuple[dt.date, int, int]] = field(default_factory=list)  # day index → (day, this period, previous period)
    tables: list[Table] = field(default_factory=list)
    by_tier: list[tuple[str, int, int]] = field(default_factory=list)  # tier, breaches, previous
    top_rules: list[tuple[str, int, int]] = field(default_factory=list)  # rule, alerts, previous
    held_reasons: list[tuple[str, int]] = field(default_factory=list)  # reason, alerts held this period
    previous_days: float = 0.0  # days of the previous period with data (less than its length when data began later)
    data_since: dt.datetime | None = None  # the first record, when it falls inside the previous period
    detectors_warm_from: dt.datetime | None = None  # the detectors' first score, when it falls after the previous period began


def _range(column: str, start: dt.datetime, end: dt.datetime) -> str:
    fmt = "%Y-%m-%d %H:%M:%S"
    a, b = start.astimezone(dt.UTC).strftime(fmt), end.astimezone(dt.UTC).strftime(fmt)
    return f"{column} >= toDateTime('{a}', 'UTC') AND {column} < toDateTime('{b}', 'UTC')"


def _change(now: int | float, before: int | float) -> str:
    if not before:
        return "new" if now else "–"
    return f"{(now - before) / before:+.0%}"


def _earliest(q: Any, sql: str) -> dt.datetime | None:
    """The UTC time a ``SELECT min(…)`` gives, or ``None`` for an empty table (ClickHouse answers the epoch)."""
    value = q(sql)[0][0]
    return value.replace(tzinfo=dt.UTC) if value is not None and value.year > 1970 else None


def collect(client: Any, database: str, since: dt.datetime, until: dt.datetime, *, sla_rules: list[str], rate_rule: str) -> ReportData:
    """Query ClickHouse for the period ``[since, until)`` and the period of the same length before it."""
    if until <= since:
        raise ValueError("--until must be after --since")
    span = until - since
    before = since - span
    db = database
    now_w, prev_w = _range("starts_at", since, until), _range("starts_at", before, since)
    both_w = _range("starts_at", before, until)
    q = client.execute
    data = ReportData(since, until)
    ((this, firing, serious),) = q(
        f"SELECT count(), countIf(status = 'firing'), countIf(severity IN ('critical', 'major')) FROM {db}.alerts_latest WHERE {now_w}"
    )
    ((prev,),) = q(f"SELECT count() FROM {db}.alerts_latest WHERE {prev_w}")
    data.totals = {"alerts": this, "previous": prev, "still_firing": firing, "serious": serious}
    # Days before the first record are not a quiet previous period but no data at all (a pipeline warming up, a
    # history not loaded): the headline compares per day over the days the previous period has data for.
    first_at = _earliest(q, f"SELECT min(starts_at) FROM {db}.alerts_latest")
    data.previous_days = span.total_seconds() / 86400
    if first_at is not None and first_at > before:
        data.previous_days = max(0.0, (since - first_at).total_seconds() / 86400)
        data.data_since = first_at
    # Detectors raise nothing while they learn (their first score marks the end of the warm-up): when that falls
    # after the previous period began, the headline compares the rules' alerts only, like with like.
    warm_at = _earliest(q, f"SELECT min(at) FROM {db}.detector_scores")
    if warm_at is not None and warm_at > before:
        data.detectors_warm_from = warm_at
        ((rules_now,),) = q(f"SELECT count() FROM {db}.alerts_latest WHERE source = 'rule' AND {now_w}")
        ((rules_prev,),) = q(f"SELECT count() FROM {db}.alerts_latest WHERE source = 'rule' AND {prev_w}")
        data.totals.update(compared=rules_now, compared_previous=rules_prev)
    else:
        data.totals.update(compared=this, compared_previous=prev)

    # what was recorded but not sent, by reason, and by the silence or inhibit rule that held it
    held_w = _range("at", since, until)
    reasons = q(
        f"SELECT splitByChar(':', held_reason)[1] AS reason, countIf({held_w}) AS n, countIf({_range('at', before, since)}) AS p"
        f" FROM {db}.alert_history_latest WHERE sent = 0 AND {_range('at', before, until)}"
        f" GROUP BY reason HAVING n > 0 OR p > 0 ORDER BY n DESC, reason"
    )
    data.held_reasons = [(r, n) for r, n, _ in reasons if n]
    data.totals["held_back"] = sum(n for _, n in data.held_reasons)
    data.tables.append(
        Table(
            "Recorded but not sent, by reason",
            ["reason", "alerts", "previous period", "change"],
            [(r, n, p, _change(n, p)) for r, n, p in reasons],
            "Held back by the alert policy or a silence: in ClickHouse (alert_status_history), not notified.",
        )
    )
    holders = q(
        f"SELECT arrayStringConcat(arraySlice(splitByChar(':', held_reason), 1, 2), ':') AS held_by, count() AS n, uniqExact(rule_id)"
        f" FROM {db}.alert_history_latest WHERE sent = 0 AND {held_w}"
        f" AND (startsWith(held_reason, 'silenced:') OR startsWith(held_reason, 'inhibited:'))"
        f" GROUP BY held_by ORDER BY n DESC LIMIT 10"
    )
    data.tables.append(
        Table(
            "Held back by which silence or inhibit rule",
            ["silence id or inhibit rule", "alerts", "rules"],
            [tuple(r) for r in holders],
            "A silence's id is Alertmanager's (yujing silence list); an inhibit rule is named in alerting.policy.yaml.",
        )
    )

    # alerts per day, this period against the one before
    days = max(1, round(span.total_seconds() / 86400))

    def per_day(window: str, origin: dt.datetime) -> dict[int, int]:
        day = f"toUInt32(intDiv(toUInt32(starts_at) - {int(origin.timestamp())}, 86400))"
        return dict(q(f"SELECT {day} AS day, count() FROM {db}.alerts_latest WHERE {window} GROUP BY day"))

    this_days, prev_days = per_day(now_w, since), per_day(prev_w, before)
    data.daily = [((since + dt.timedelta(days=i)).date(), this_days.get(i, 0), prev_days.get(i, 0)) for i in range(days)]

    rules = q(
        f"SELECT rule_id, countIf({now_w}) AS n, countIf({prev_w}) AS p, countIf({now_w} AND severity IN ('critical', 'major'))"
        f" FROM {db}.alerts_latest WHERE {both_w}"
        f" GROUP BY rule_id HAVING n > 0 OR p > 0 ORDER BY n DESC, rule_id LIMIT 15"
    )
    data.top_rules = [(r, n, p) for r, n, p, _ in rules]
    data.tables.append(
        Table(
            "Alerts by rule",
            ["rule", "alerts", "critical/major", "previous period", "change"],
            [(r, n, s, p, _change(n, p)) for r, n, p, s in rules],
        )
    )
    top = q(
        f"SELECT starts_at, severity, rule_id, region, status, summary FROM {db}.alerts_latest WHERE {now_w}"
        f" ORDER BY {_SEVERITY_ORDER}, starts_at LIMIT 15"
    )
    data.tables.append(
        Table(
            "Top alerts (most severe first)", ["starts (UTC)", "severity", "rule", "region", "status", "summary"], [tuple(r) for r in top]
        )
    )
    regions = q(
        f"SELECT region, countIf({now_w}) AS n, countIf({prev_w}) AS p FROM {db}.alerts_latest"
        f" WHERE region != '' AND {both_w}"
        f" GROUP BY region HAVING n > 0 ORDER BY n DESC LIMIT 10"
    )
    data.tables.append(
        Table("Alerts by region", ["region", "alerts", "previous period", "change"], [(r, n, p, _change(n, p)) for r, n, p in regions])
    )

    words = q(
        f"SELECT subject, max(score) AS top, max(observed), argMax(expected, score) FROM {db}.detector_scores FINAL"
        f" WHERE source = 'hot_word' AND {_range('at', since, until)} GROUP BY subject ORDER BY top DESC LIMIT 15"
    )
    data.tables.append(
        Table(
            "Top hot words",
            ["term (scope|term)", "highest score", "peak count", "usual count then"],
            [(s, round(t, 1), int(o), round(e, 1)) for s, t, o, e in words],
            "Terms whose share of complaint texts rose most above their usual share (SigniTrend significance).",
        )
    )
    rate_rows = q(
        f"SELECT subject, sum(observed) AS complaints, sum(expected) AS orders FROM {db}.detector_scores FINAL"
        f" WHERE rule_id = '{rate_rule}' AND {_range('at', since, until)} GROUP BY subject HAVING orders >= 50"
        f" ORDER BY complaints / orders DESC LIMIT 15"
    )
    data.tables.append(
        Table(
            "Cohorts with the most complaints per 10,000 orders",
            ["cohort", "complaints", "completed orders", "per 10,000"],
            [(s, int(c), int(o), round(c / o * 10000, 1)) for s, c, o in rate_rows],
            f"From rule {rate_rule}'s daily groups with at least 50 completed orders in the period.",
        )
    )
    if sla_rules:
        names = ", ".join(f"'{r}'" for r in sla_rules)
        tiers = q(
            f"SELECT if(has(label_keys, 'tier'), label_values[indexOf(label_keys, 'tier')], '(none)') AS tier,"
            f" countIf({now_w}) AS n, countIf({prev_w}) AS p FROM {db}.alerts_latest WHERE rule_id IN ({names})"
            f" AND has(label_keys, 'phase') = 0"
            f" GROUP BY tier HAVING n > 0 OR p > 0"
            f" ORDER BY multiIf(tier = 'platinum', 0, tier = 'gold', 1, tier = 'silver', 2, tier = 'standard', 3, 4)"
        )
        data.by_tier = [(t, n, p) for t, n, p in tiers]
        data.tables.append(
            Table(
                "SLA breaches by customer tier",
                ["tier", "breaches", "previous period", "change"],
                [(t, n, p, _change(n, p)) for t, n, p in tiers],
                f"Rules: {', '.join(sla_rules)} (breaches, not early warnings).",
            )
        )
    return data
