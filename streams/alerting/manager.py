"""The alert manager: what happens to an alert after dedup, as Alertmanager's stages.

For each alert the engine admits (``alert_id`` and status not seen before),
in order, the first stage that holds it back decides; a held alert is still
a record (ClickHouse, JSON Lines) but is not sent to the notifying sinks
(Alertmanager, the ``alerts`` topic, the webhook):

1. **source**: a firing alert matching an inhibit rule's ``source`` is kept
   as an open source until it resolves (even when it is itself held back).
2. **resolved**: a resolved record is sent only if its firing one was.
3. **silenced**: a silence matches it.
   A protected alert (critical, red line: :data:`~streams.alerting.policy.ALWAYS_SENT`)
   goes from here straight to **sent**: no policy holds it back, only an operator's silence.
4. **inhibited**: an open source of an inhibit rule matches it, with equal ``equal`` labels.
5. **realert**: the same rule sent an alert with the same labels less than
   the rule's ``realert`` interval ago (event time).
6. **rate_limited**: the rule already sent its ``rate_limit.max`` alerts in
   this interval of the partition (the interval of the alert's ``starts_at``,
   so the count does not depend on how the input was batched, nor on how many
   workers share the partitions); the first one held back raises one overflow
   summary alert for the rule, interval and partition, resolved with the
   final count when the interval ends.
7. otherwise it is **sent**.

Grouping is a matter of delivery: the webhook's buffered sink lingers for
``group.interval`` and posts one notification per ``group.by`` labels (see
:mod:`sinks.webhook`).

All state is in keyed state under the emitting partition, with timers that
clear it, so it is bounded and recovered after a restart. Rate-limit counts
are per input partition (the local runner and a single worker see every
partition; with several workers, inhibition sees the sources its worker holds).
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field

import msgspec

from streams.alerting.matchers import Matcher, alert_value, matches
from streams.alerting.policy import AlertPolicy, RateLimit
from streams.alerting.silences import Silence
from yujing.alerts import Alert, alert_id
from yujing.protocols import KeyedState, RuleContext, StateBackend
from yujing.timeutil import format_rfc3339, to_datetime

__all__ = ["OPEN_RETENTION", "OVERFLOW_LABEL", "AlertManager", "Decision", "Dispatch"]

#: Label of the overflow summary alert a rate limit raises.
OVERFLOW_LABEL = "overflow"
#: How long an open alert is remembered as sent, or as an inhibition source, when no resolve comes (see AlertManager).
OPEN_RETENTION = 30 * 86400.0


@dataclass(frozen=True)
class Decision:
    """What the manager did with one admitted alert: ``held`` is ``None`` when it was sent, else the reason."""

    alert: Alert
    partition: int
    held: str | None = None

    @property
    def held_kind(self) -> str | None:
        """The stage that held it back (``silenced``, ``inhibited``, …) without the silence or source it names."""
        return None if self.held is None else self.held.split(":", 1)[0]


@dataclass
class Dispatch:
    """One batch's alerts as the sinks receive them."""

    decisions: list[Decision] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.decisions)


class RateCount(msgspec.Struct, array_like=True):
    sent: int = 0
    held: int = 0
    rule_source: str = "rule"
    severity: str = "info"
    summary_cjk: bool = False
    rule_version: str = ""


def _fingerprint(alert: Alert) -> str:
    return alert_id(alert.rule_id, *(f"{k}={v}" for k, v in sorted(alert.labels.items())))


def _cjk(text: str) -> bool:
    return any("\u4e00" <= ch <= "\u9fff" for ch in text)


class AlertManager:
    """Silences, inhibition, realert and rate limits over the engine's admitted alerts.

    The engine calls :meth:`admit` for each alert its dedup lets through and
    :meth:`on_timer` for the manager's timers; a runner takes each batch's
    :class:`Dispatch` with :meth:`take`.

    >>> from streams.engine import DictBackend
    >>> manager = AlertManager(AlertPolicy(), DictBackend())
    >>> manager.take().decisions
    []
    """

    OWNER = "~alerting"

    def __init__(
        self,
        policy: AlertPolicy,
        backend: StateBackend,
        retention: float = 2 * 86400.0,
        partitions: int = 8,
        open_retention: float = OPEN_RETENTION,
    ) -> None:
        self.policy = policy
        self.backend = backend
        self.retention = retention
        #: How long a sent (or inhibiting) firing alert is remembered when no resolve comes: it is open until then,
        #: however long (a one-off alert closes after 3 days by default); only one whose rule was removed never resolves.
        self.open_retention = max(open_retention, retention)
        self.partitions = partitions
        self.sent: KeyedState[Alert] = backend.namespace("~am-sent", Alert)
        self.sources: KeyedState[Alert] = backend.namespace("~am-sources", Alert)
        self.realerts: KeyedState[float] = backend.namespace("~am-realert", float)
        self.rates: KeyedState[RateCount] = backend.namespace("~am-rate", RateCount)
        self.silence_state: KeyedState[Silence] = backend.namespace("~am-silences", Silence)
        self.silences: dict[str, Silence] = {}
        self._muting: list[tuple[Silence, tuple[Matcher, ...]]] = []
        self.open_sources: dict[str, Alert] = {}
        self._dispatch = Dispatch()
        self.recover()

    # -- configuration ------------------------------------------------------------
    def set_silences(self, silences: dict[str, Silence]) -> None:
        """Replace the silences (from the folded log); stored in every partition's state."""
        for sid in set(self.silences) - set(silences):
            for p in range(self.partitions):
                self.backend.use_partition(p)
                self.silence_state.delete(sid)
        for sid, silence in silences.items():
            if self.silences.get(sid) != silence:
                for p in range(self.partitions):
                    self.backend.use_partition(p)
                    self.silence_state.set(sid, silence)
        self._use_silences(silences)

    def _use_silences(self, silences: dict[str, Silence]) -> None:
        self.silences = dict(silences)
        self._muting = [(s, s.parsed()) for s in silences.values()]  # matchers parsed once, not per alert

    def recover(self) -> None:
        """Reload the in-memory views (silences, open inhibit sources) from keyed state."""
        self._use_silences(dict(self.silence_state.items()))
        self.open_sources = dict(self.sources.items())

    def take(self) -> Dispatch:
        out, self._dispatch = self._dispatch, Dispatch()
        return out

    def open_alerts(self) -> list[Alert]:
        """Firing alerts sent and not yet resolved (a notifier re-sends them, e.g. after a restart)."""
        return [a for _, a in self.sent.items()]

    # -- the stages ------------------------------------------------------------------
    def admit(self, alert: Alert, ctx: RuleContext) -> None:
        self._dispatch.decisions.append(Decision(alert, ctx.partition, self._decide(alert, ctx)))

    def _decide(self, alert: Alert, ctx: RuleContext) -> str | None:
        self._track_source(alert, ctx)
        if alert.status == "resolved":
            if self.sent.get(alert.alert_id) is None:
                return "not_sent"
            self.sent.delete(alert.alert_id)
            ctx.cancel_timer(self.OWNER, "sent|" + alert.alert_id)
            return None
        if self._muting:
            at = alert.detected_at.timestamp()
            for silence, matchers in self._muting:
                if silence.active(at) and matches(matchers, alert):
                    return f"silenced:{silence.id}"
        if self.policy.is_protected(alert):
            self._remember_sent(alert, ctx)
            return None  # critical and red-line alerts: never inhibited, held by realert or rate-limited
        inhibitor = self._inhibitor(alert)
        if inhibitor is not None:
            return f"inhibited:{inhibitor}"
        overflow = alert.labels.get(OVERFLOW_LABEL) == "true"
        if not overflow and self._realerted(alert, ctx):
            return "realert"
        limit = None if overflow else self.policy.rate_limit_for(alert.rule_id)
        if limit is not None and self._over_limit(alert, limit, ctx):
            return "rate_limited"
        self._remember_sent(alert, ctx)
        return None

    def _remember_sent(self, alert: Alert, ctx: RuleContext) -> None:
        """A sent firing alert: its resolve will be sent too (kept until it resolves, at most ``open_retention``
        after it started)."""
        self.sent.set(alert.alert_id, alert)
        ctx.set_timer(self.OWNER, "sent|" + alert.alert_id, alert.starts_at.timestamp() + self.open_retention)

    def _track_source(self, alert: Alert, ctx: RuleContext) -> None:
        if not any(matches(rule.source, alert) for rule in self.policy.inhibit):
            return
        if alert.status == "firing":
            self.sources.set(alert.alert_id, alert)
            self.open_sources[alert.alert_id] = alert
            ctx.set_timer(self.OWNER, "source|" + alert.alert_id, alert.starts_at.timestamp() + self.open_retention)
        else:
            self.sources.delete(alert.alert_id)
            self.open_sources.pop(alert.alert_id, None)

    def _inhibitor(self, alert: Alert) -> str | None:
        for rule in self.policy.inhibit:
            if not matches(rule.target, alert):
                continue
            for source in self.open_sources.values():
                if source.alert_id == alert.alert_id or not matches(rule.source, source):
                    continue
                if all(alert_value(source, name) == alert_value(alert, name) for name in rule.equal):
                    return f"{rule.name}:{source.alert_id}"
        return None

    def _realerted(self, alert: Alert, ctx: RuleContext) -> bool:
        interval = self.policy.realert_for(alert.rule_id)
        if interval <= 0:
            return False
        fp = _fingerprint(alert)
        at = alert.starts_at.timestamp()
        last = self.realerts.get(fp)
        if last is not None and 0 <= at - last < interval:
            return True
        self.realerts.set(fp, at)
        ctx.set_timer(self.OWNER, "realert|" + fp, at + interval)
        return False

    def _over_limit(self, alert: Alert, limit: RateLimit, ctx: RuleContext) -> bool:
        """Counts the alert in the interval of its own time (``starts_at``), not of the watermark its batch had
        reached: that depends on how the topics' fetches interleaved, so one worker and three would hold back
        different alerts. An alert decided after its interval's count was resolved (a late event's) starts a
        fresh count for it: sent, unless more than ``max`` such come (their overflow alert is the one already raised)."""
        bucket = math.floor(alert.starts_at.timestamp() / limit.per) * limit.per
        # The partition in the key: state keys are not per partition by themselves, and a count one key shared by
        # every partition was one count in one process but one per worker with several (and, in rocksdb, a copy
        # per partition's database, which a delete left behind).
        key = f"{alert.rule_id}|{bucket!r}|{ctx.partition}"
        count = self.rates.get(key)
        if count is None:
            count = RateCount(
                rule_source=alert.source, severity=alert.severity, summary_cjk=_cjk(alert.summary), rule_version=alert.rule_version
            )
            ctx.set_timer(self.OWNER, "rate|" + key, bucket + limit.per)
        if count.sent < limit.max:
            count.sent += 1
            self.rates.set(key, count)
            return False
        count.held += 1
        self.rates.set(key, count)
        if count.held == 1:
            ctx.emit(self._overflow(alert.rule_id, count, bucket, limit, "firing", ctx.partition))
        return True

    def _overflow(self, rule_id: str, count: RateCount, bucket: float, limit: RateLimit, status: str, partition: int | None) -> Alert:
        start = format_rfc3339(bucket)
        if count.summary_cjk:
            where = "" if partition is None else f"（分区 {partition}）"
            summary = f"规则 {rule_id} 自 {start} 起告警超过 {limit.max} 条{where}，其余 {count.held} 条已记录、未逐条发送"
        else:
            where = "" if partition is None else f" (partition {partition})"
            summary = f"rule {rule_id} raised more than {limit.max} alerts from {start}{where}; {count.held} more were recorded, not sent"
        parts = (repr(bucket),) if partition is None else (repr(bucket), str(partition))  # None: counted before partitions were
        return Alert(
            alert_id=alert_id(rule_id, "~overflow", *parts),
            source=count.rule_source,  # type: ignore[arg-type]
            rule_id=rule_id,
            rule_version=count.rule_version,
            severity=count.severity,  # type: ignore[arg-type]
            status=status,  # type: ignore[arg-type]
            starts_at=to_datetime(bucket),
            detected_at=dt.datetime.now(dt.UTC),
            ends_at=to_datetime(bucket + limit.per) if status == "resolved" else None,
            labels={OVERFLOW_LABEL: "true", "alertname": rule_id},
            summary=summary,
            evidence={"sent": count.sent, "held": count.held, "limit": limit.max, "per_seconds": limit.per, "partition": partition},
        )

    # -- timers ----------------------------------------------------------------------
    def on_timer(self, key: str, fire_at: float, ctx: RuleContext) -> None:
        kind, _, rest = key.partition("|")
        if kind == "sent":
            self.sent.delete(rest)
        elif kind == "source":
            self.sources.delete(rest)
            self.open_sources.pop(rest, None)
        elif kind == "realert":
            self.realerts.delete(rest)
        elif kind == "rate":
            count = self.rates.get(rest)
            self.rates.delete(rest)
            head, _, last = rest.rpartition("|")
            if "|" in head:  # rule|bucket|partition
                (rule_id, bucket), partition = head.rsplit("|", 1), int(last)
            else:  # rule|bucket, stored before counts were per partition
                rule_id, bucket, partition = head, last, None
            limit = self.policy.rate_limit_for(rule_id)
            if count is not None and count.held and limit is not None:
                ctx.emit(self._overflow(rule_id, count, float(bucket), limit, "resolved", partition))
