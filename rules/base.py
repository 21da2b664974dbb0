"""What every rule type shares: the header fields of a rule file and alert building."""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Annotated, Any

import msgspec
from msgspec import Meta

from rules.errors import SpecError
from rules.fields import compile_field
from rules.template import Template, as_text
from yujing.alerts import Alert, Severity, alert_id
from yujing.events import event_kind
from yujing.timeutil import parse_duration, to_datetime

__all__ = ["DEFAULT_CLOSE_AFTER", "LABEL_FIELDS", "CloseSpec", "Closing", "KeptFields", "RuleHeader", "RuleSpec", "event_labels"]

#: Event fields copied into an alert's labels when present (never free text).
LABEL_FIELDS = ("customer_id", "region", "product", "channel", "tier", "order_id", "complaint_id", "bill_id")

RuleId = Annotated[str, Meta(pattern=r"^[a-z0-9][a-z0-9_.-]{0,127}$")]


class CloseSpec(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """How a one-off alert closes: when a later event names the same ticket (``on`` with the same ``match``
    label), else ``after`` this long in event time."""

    on: str | list[str] | None = None
    match: str | None = None
    after: str | int | float = "3d"


class RuleSpec(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, tag_field="type"):
    """Fields every rule file has; each rule type subclasses it with a ``tag``."""

    id: RuleId
    title: str
    description: str = ""
    owner: str = ""
    severity: Severity
    labels: dict[str, str] = {}
    runbook: str = ""
    summary: str
    enabled: bool = True
    version: str | None = None
    close: CloseSpec | None = None


def event_labels(event: Any) -> dict[str, str]:
    """The label fields an event carries."""
    out = {}
    for name in LABEL_FIELDS:
        value = getattr(event, name, None)
        if value is not None:
            out[name] = str(value)
    return out


class KeptFields:
    """The few fields of an event a rule keeps in state to build its alert later: label fields and summary fields.

    Values are kept as a list in a fixed order (no per-entry dict), and the
    values that repeat across events (region, product, channel, tier) are
    interned, so a million kept events share them.

    >>> kept = KeptFields(("order_id", "text"))
    >>> class E: customer_id = "c-1"; region = "台州"; order_id = "o-1"; text = "hi"
    >>> values = kept.values_of(E())
    >>> kept.labels(values)
    {'customer_id': 'c-1', 'region': '台州', 'order_id': 'o-1'}
    >>> kept.source(values).text
    'hi'
    """

    _REPEATING = frozenset({"region", "product", "channel", "tier"})

    def __init__(self, summary_fields: tuple[str, ...]) -> None:
        self.names = tuple(dict.fromkeys((*LABEL_FIELDS, *summary_fields)))
        self.getters = tuple(compile_field(name) for name in self.names)
        self.intern = tuple(name in self._REPEATING for name in self.names)

    def values_of(self, event: Any) -> list[str | None]:
        out: list[str | None] = []
        for get, shared in zip(self.getters, self.intern, strict=True):
            value = get(event)
            if value is None:
                out.append(None)
            else:
                text = value if isinstance(value, str) else as_text(value)
                out.append(sys.intern(text) if shared else text)
        return out

    def labels(self, values: list[str | None]) -> dict[str, str]:
        return {name: value for name, value in zip(LABEL_FIELDS, values, strict=False) if value is not None}

    def source(self, values: list[str | None]) -> Any:
        """An object the summary template can read the kept fields from."""
        plain: dict[str, Any] = {}
        attrs: dict[str, Any] = {}
        for name, value in zip(self.names, values, strict=False):
            if name.startswith("attrs."):
                attrs[name[6:]] = value
            else:
                plain[name] = value
        return SimpleNamespace(**plain, attrs=attrs)


@dataclass(frozen=True)
class Closing:
    """A one-off rule's alerts close on an event of ``on`` whose ``match`` field equals the alert's label, else
    ``after`` seconds after they started (see :mod:`streams.engine.lifecycle`)."""

    after: float
    on: frozenset[str] = frozenset()
    match: str | None = None


#: How long a one-off alert stays open when its rule says nothing (``close: {after: …}``).
DEFAULT_CLOSE_AFTER = "3d"


def _closing(spec: CloseSpec | None, one_off: bool) -> Closing | None:
    if not one_off:
        if spec is not None:
            raise SpecError("only one-off rule types (match, compare, sequence, change, new_value) close this way", ("close",))
        return None
    spec = spec or CloseSpec(after=DEFAULT_CLOSE_AFTER)
    try:
        after = parse_duration(spec.after)
    except ValueError as exc:
        raise SpecError(str(exc), ("close", "after"), "durations look like 90s, 15m, 48h, 7d") from None
    if after <= 0:
        raise SpecError("must be positive", ("close", "after"))
    if (spec.on is None) != (spec.match is None):
        raise SpecError("`on` and `match` go together: the event that closes the alert and the label it shares", ("close",))
    if spec.match is not None and spec.match not in LABEL_FIELDS:
        raise SpecError(f"`match` is a label the alert carries: one of {', '.join(LABEL_FIELDS)}", ("close", "match"))
    on = frozenset([spec.on] if isinstance(spec.on, str) else spec.on or [])
    unknown = sorted(t for t in on if event_kind(t) is None)
    if unknown:
        raise SpecError(f"unknown event type {unknown[0]!r}", ("close", "on"))
    return Closing(after, on, spec.match)


class RuleHeader:
    """A rule's identity and presentation, shared by all rule types.

    It turns a condition into an :class:`Alert`: id from the rule and the
    condition's parts, labels from the rule and the event, summary from the
    template. A rule type whose alerts never resolve by themselves (``one_off``)
    has a :class:`Closing`: its alerts close on a ticket's closing event, else
    after a while, so that *firing* means *still open*.
    """

    source = "rule"
    one_off = False

    def __init__(
        self, spec: RuleSpec, version: str, variables: frozenset[str] = frozenset(), fields: tuple[str, ...] | None = None
    ) -> None:
        self.rule_id = spec.id
        self.version = version
        self.title = spec.title
        self.severity = spec.severity
        self.static_labels = dict(spec.labels)
        self.runbook = spec.runbook
        self.summary = Template(spec.summary, variables, fields)
        self.closing = _closing(spec.close, self.one_off)

    def alert(
        self,
        *,
        parts: tuple[str, ...],
        status: str,
        starts_at: float,
        labels: Mapping[str, str],
        summary: str,
        evidence: dict[str, Any],
        ends_at: float | None = None,
        severity: str | None = None,
    ) -> Alert:
        merged = {**labels, **self.static_labels, "rule_title": self.title}
        if self.runbook:
            evidence = {**evidence, "runbook": self.runbook}
        return Alert(
            alert_id=alert_id(self.rule_id, *parts),
            source=self.source,  # type: ignore[arg-type]
            rule_id=self.rule_id,
            rule_version=self.version,
            severity=severity or self.severity,  # type: ignore[arg-type]
            status=status,  # type: ignore[arg-type]
            starts_at=to_datetime(starts_at),
            detected_at=dt.datetime.now(dt.UTC),
            ends_at=to_datetime(ends_at) if ends_at is not None else None,
            labels=merged,
            summary=summary,
            evidence=evidence,
        )
