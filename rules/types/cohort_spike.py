"""``cohort_spike``: a cohort's complaints (or complaints per order) jump above its seasonal baseline.

.. code-block:: yaml

    id: complaint-spike
    type: cohort_spike
    title: 投诉量突增
    severity: major
    on: complaint.opened
    dimensions: [region, product, channel]   # cohorts: each dimension, and pairs (depth: 2)
    window: 1h
    timezone: "+08:00"                       # whose hours and weekdays the seasonality learns
    summary: "{cohort} 投诉 {observed} 件，预期 {expected}（{ratio} 倍）"

``rate_of: order.completed`` makes it a rate: complaints per denominator event
in the same cohort, so a campaign that doubles orders does not look like a
spike when complaints double with them.

Each partition forwards one small record per matching event to the cohort
stage (:mod:`yujing.cohort`), which counts every cohort per tumbling window.
When a window closes (the watermark passes its end) each active cohort is
tested against its baseline (:mod:`detectors.baseline`: hour-of-day means ×
day-of-week factors, learnt online; significance from the negative-binomial
tail (Poisson with ``dispersion: 0``), with a low-volume guard). Cohorts idle for some windows catch up with zero counts
when next seen, so quiet hours are learnt without touching idle state.

One incident, one alert: a spiking cohort whose broader cohort also spikes is
covered by that broader alert; spiking broad cohorts explained mostly by one
shared narrower cohort (the drill-down, by contribution to the change, as in
ThirdEye) become one alert about that narrower cohort. The alert fires at
the window's end and resolves at the end of the first window in which the
cohort is back below 1.5 × its baseline (hysteresis: an outage's second hour
that is "only" twice a busier hour's baseline does not resolve and re-fire).

State (per rule): one baseline per cohort (:data:`BASELINE_BYTES` stored),
at most ``max_cohorts`` of them (new cohorts beyond are counted, not kept),
forgotten after ``forget_after`` without complaints; counts per open window.
"""

from __future__ import annotations

import dataclasses
import itertools
from typing import Any

import msgspec
import numpy as np

from detectors.baseline import CohortBaseline, SpikeTest, drill_down
from rules.base import RuleHeader, RuleSpec
from rules.conditions import Condition, compile_condition
from rules.errors import SpecError
from rules.registry import register
from rules.types.match import event_types
from rules.window import Window, WindowCloser, parse_utc_offset
from yujing.cohort import CohortRecord
from yujing.events import Event
from yujing.protocols import RuleContext
from yujing.timeutil import format_rfc3339, parse_duration

__all__ = ["BASELINE_BYTES", "CohortSpikeRule", "CohortSpikeSpec"]

VARIABLES = frozenset({"cohort", "observed", "expected", "ratio", "p_value", "window", "window_start", "explained_by"})
DIMENSIONS = ("region", "product", "channel", "tier")
#: How many missed windows a returning cohort replays as zeros (a week of hours); beyond, the rest is skipped.
MAX_CATCH_UP = 24 * 7
#: A spike is judged on this window alone and on the spans ending with it of up to SPAN windows.
SPAN = 3


class CohortSpikeSpec(RuleSpec, tag="cohort_spike", kw_only=True, forbid_unknown_fields=True):
    """YAML of a ``cohort_spike`` rule."""

    on: str | list[str]
    where: Condition | None = None
    dimensions: list[str]
    depth: int = 2
    rate_of: str | list[str] | None = None
    rate_where: Condition | None = None
    window: str | int | float = "1h"
    timezone: str = "+08:00"
    alpha: float = 1e-6
    dispersion: float = 0.05
    min_count: int = 5
    min_ratio: float = 2.0
    warmup: str | int | float = "7d"
    max_cohorts: int = 100_000
    forget_after: str | int | float = "28d"
    explain_share: float = 0.5


class Baseline(msgspec.Struct, array_like=True):
    """A cohort's stored baseline: the learnt float32 values as bytes, and the last window it has learnt."""

    values: bytes
    last: float
    seen_at: float  # last window with a complaint (for forgetting)
    recent: list[float] = msgspec.field(default_factory=list)  # observed, expected of the windows just before ``last``


class Counts(msgspec.Struct, array_like=True):
    numerator: int = 0
    denominator: int = 0


class OpenAlert(msgspec.Struct, array_like=True):
    since: float  # window start of the first spiking window
    labels: dict[str, str]


#: Stored bytes per cohort baseline at most: the float32 values, two times, msgpack framing, and a key
#: of up to 64 bytes (``region=…,product=…``).
BASELINE_BYTES = 67 * 4 + 2 * 9 + 8 + 64


def cohort_key(pairs: tuple[tuple[str, str], ...]) -> str:
    """``region=台州,product=宽带`` (dimensions in the rule's order)."""
    return ",".join(f"{k}={v}" for k, v in pairs)


def parse_cohort(key: str) -> tuple[tuple[str, str], ...]:
    return tuple(tuple(part.split("=", 1)) for part in key.split(",")) if key else ()  # type: ignore[misc]


class CohortSpikeRule(RuleHeader):
    """Counts complaints per cohort and window in the cohort stage; alerts on significant spikes."""

    cohort = True
    source = "cohort_spike"

    def __init__(self, spec: CohortSpikeSpec, version: str) -> None:
        super().__init__(spec, version, VARIABLES, ())
        self.event_types = event_types(spec.on, ("on",))
        self.when = compile_condition(spec.where)
        self.rate_types = event_types(spec.rate_of, ("rate_of",)) if spec.rate_of else frozenset()
        if self.rate_types & self.event_types:
            raise SpecError("`rate_of` must name other event types than `on`", ("rate_of",))
        self.rate_when = compile_condition(spec.rate_where)
        self.event_types = self.event_types | self.rate_types
        unknown = [d for d in spec.dimensions if d not in DIMENSIONS]
        if unknown or not spec.dimensions:
            raise SpecError(f"unknown dimension `{unknown[0] if unknown else ''}`", ("dimensions",), f"use some of {', '.join(DIMENSIONS)}")
        self.dimensions = tuple(spec.dimensions)
        if not 1 <= spec.depth <= len(self.dimensions):
            raise SpecError(f"`depth` must be between 1 and {len(self.dimensions)}", ("depth",))
        self.combos = [c for r in range(1, spec.depth + 1) for c in itertools.combinations(range(len(self.dimensions)), r)]
        self.window = Window.from_spec(spec.window, "tumbling", spec.timezone)
        self.window_text = str(spec.window)
        self.utc_offset = parse_utc_offset(spec.timezone)
        warmup = parse_duration(spec.warmup)
        self.test = SpikeTest(
            alpha=spec.alpha,
            min_count=spec.min_count,
            min_ratio=spec.min_ratio,
            warmup=int(warmup // self.window.size),
            dispersion=spec.dispersion,
        )
        self.span_test = dataclasses.replace(self.test, alpha=spec.alpha / SPAN)
        if spec.dispersion < 0:
            raise SpecError("`dispersion` must be zero (Poisson) or more (negative binomial)", ("dispersion",))
        if not 0 < spec.alpha < 1:
            raise SpecError("`alpha` must be between 0 and 1", ("alpha",))
        if spec.max_cohorts < 1:
            raise SpecError("`max_cohorts` must be at least 1", ("max_cohorts",))
        self.max_cohorts = spec.max_cohorts
        self.forget_after = parse_duration(spec.forget_after)
        self.explain_share = spec.explain_share
        self.ns = spec.id
        self.dropped_cohorts = 0  # new cohorts not kept because ``max_cohorts`` was reached
        self.closer = WindowCloser(self.window, self.rule_id)

    # -- partition half ------------------------------------------------------
    def on_event(self, event: Event, ts: float, ctx: RuleContext) -> None:
        if event.event_type in self.rate_types:
            if not self.rate_when(event):
                return
            role = "den"
        else:
            if not self.when(event):
                return
            role = "num"
        labels = {d: str(v) for d in self.dimensions if (v := getattr(event, d, None)) is not None}
        ctx.forward(CohortRecord("cohort:" + self.rule_id, "*", event.ts, event.event_id, "", role, "", labels))

    # -- cohort half ---------------------------------------------------------
    def on_record(self, record: CohortRecord, ts: float, ctx: RuleContext) -> None:
        start = self.closer.open_window(ts, ctx)
        if start is None:
            return
        counts = ctx.state(f"spike-n:{self.ns}", Counts)
        numerator = record.role == "num"
        values = [record.labels.get(d) for d in self.dimensions]
        for combo in self.combos:
            if any(values[i] is None for i in combo):
                continue
            key = f"{start!r}|" + cohort_key(tuple((self.dimensions[i], values[i]) for i in combo))  # type: ignore[misc]
            c = counts.get(key) or Counts()
            if numerator:
                c.numerator += 1
            else:
                c.denominator += 1
            counts.set(key, c)

    def on_timer(self, key: str, fire_at: float, ctx: RuleContext) -> None:
        start = self.closer.closing(key)
        if start is None:
            return
        counts = ctx.state(f"spike-n:{self.ns}", Counts)
        prefix = f"{start!r}|"
        window = {k[len(prefix) :]: c for k, c in counts.items() if k.startswith(prefix)}
        for k in window:
            counts.delete(prefix + k)
        scored = self._score(window, start, ctx)
        self._alerts(scored, start, ctx)

    def _season(self, start: float) -> tuple[int, int]:
        local = start + self.utc_offset
        days = int(local // 86400)
        return int(local % 86400 // 3600), (days + 3) % 7  # 1970-01-01 was a Thursday: weekday 3

    def _score(self, window: dict[str, Counts], start: float, ctx: RuleContext) -> dict[str, tuple[int, float, Any]]:
        """Per active cohort: (observed, expected, spike or None); baselines learn the window."""
        baselines = ctx.state(f"spike-b:{self.ns}", Baseline)
        meta = ctx.state(f"spike-m:{self.ns}", int)
        size = self.window.size
        kept = meta.get("cohorts") or 0
        out: dict[str, tuple[int, float, Any]] = {}
        for cohort, c in sorted(window.items()):
            stored = baselines.get(cohort)
            if stored is None:
                if kept >= self.max_cohorts:
                    self.dropped_cohorts += 1
                    continue
                kept += 1
                baseline, seen = CohortBaseline.fresh(), None
            else:
                baseline = CohortBaseline(np.frombuffer(stored.values, dtype=np.float32).copy())
                seen = stored.last
            recent = list(stored.recent) if stored is not None else []
            if seen is not None:  # learn the quiet windows since it was last seen
                missed = round((start - seen) / size) - 1
                for i in range(max(0, missed - MAX_CATCH_UP), max(missed, 0)):
                    at = seen + (i + 1) * size
                    if not self.rate_types:
                        recent = [0.0, baseline.update(0.0, *self._season(at)), *recent][: 2 * (SPAN - 1)]
            hour, day = self._season(start)
            if self.rate_types:
                if c.denominator == 0:
                    baselines.set(cohort, Baseline(baseline.state.tobytes(), start, start))
                    continue
                expected = baseline.expected(hour, day) * c.denominator
                spike = self._test(c.numerator, expected, recent, baseline.windows_seen)
                baseline.update(c.numerator / c.denominator, hour, day)
            else:
                expected = baseline.expected(hour, day)
                spike = self._test(c.numerator, expected, recent, baseline.windows_seen)
                baseline.update(float(c.numerator), hour, day)
            seen_at = start if c.numerator or stored is None else stored.seen_at
            recent = [float(c.numerator), expected, *recent][: 2 * (SPAN - 1)]
            baselines.set(cohort, Baseline(baseline.state.tobytes(), start, seen_at, recent))
            out[cohort] = (c.numerator, expected, spike)
        meta.set("cohorts", kept)
        if int(start // 86400) != int((start + size) // 86400):  # once a day: forget cohorts long quiet
            self._forget(baselines, meta, start)
        return out

    def _test(self, observed: int, expected: float, recent: list[float], seen: int) -> Any:
        """This window alone, or with the one or two before it (a sustained rise that no single hour
        shows at the chosen alpha): each span at alpha / SPAN (Bonferroni)."""
        spike = self.span_test(observed, expected, seen)
        if spike is not None:
            return spike
        total_obs, total_exp = float(observed), expected
        for i in range(0, len(recent), 2):
            total_obs += recent[i]
            total_exp += recent[i + 1]
            spike = self.span_test(int(total_obs), total_exp, seen)
            if spike is not None and observed >= self.test.min_ratio * max(expected, 0.1) * 0.75:  # still high now
                return spike
        return None

    def _forget(self, baselines: Any, meta: Any, now: float) -> None:
        old = [k for k, b in baselines.items() if now - b.seen_at > self.forget_after]
        for k in old:
            baselines.delete(k)
        if old:
            meta.set("cohorts", max(0, (meta.get("cohorts") or 0) - len(old)))

    def _alerts(self, scored: dict[str, tuple[int, float, Any]], start: float, ctx: RuleContext) -> None:
        spiking = {k for k, (_, _, spike) in scored.items() if spike is not None}
        pairs = {k: frozenset(parse_cohort(k)) for k in scored}
        # Roots: spiking cohorts with no spiking broader cohort.
        roots = [k for k in spiking if not any(pairs[o] < pairs[k] for o in spiking)]
        incidents: dict[str, list[str]] = {}  # alert cohort → roots it stands for
        explained: dict[str, list[tuple[str, float]]] = {}
        for root in sorted(roots):
            observed, expected, _ = scored[root]
            children = {k: scored[k][:2] for k in scored if pairs[root] < pairs[k] and len(pairs[k]) == len(pairs[root]) + 1}
            explanation = drill_down((observed, expected), children, share=0.8)  # type: ignore[arg-type]
            explained[root] = explanation
            lead = explanation[0][0] if explanation and explanation[0][1] >= self.explain_share else root
            incidents.setdefault(lead, []).append(root)
        # A narrower incident inside a broader one (a region-wide outage shows in each product too) joins it.
        for lead in sorted(incidents, key=lambda k: -len(pairs[k])):
            broader = [a for a in incidents if a != lead and pairs[a] < pairs[lead]]
            if broader:
                incidents[min(broader, key=lambda a: len(pairs[a]))].extend(incidents.pop(lead))
        open_alerts = ctx.state(f"spike-o:{self.ns}", OpenAlert)
        end = start + self.window.size
        for cohort, roots_of in sorted(incidents.items()):
            observed, expected, _ = scored[cohort]
            main = roots_of[0]
            spike = scored[main][2]
            current = open_alerts.get(cohort)
            if current is None:
                current = OpenAlert(start, dict(parse_cohort(cohort)))
                open_alerts.set(cohort, current)
            ctx.emit(self._alert(cohort, current, "firing", end, observed, expected, spike, roots_of, explained))
        for cohort, current in list(open_alerts.items()):
            if cohort not in incidents and self._still_elevated(scored.get(cohort)):
                observed, expected, _ = scored[cohort]
                ctx.emit(self._alert(cohort, current, "firing", end, observed, expected, None, [], {}))
                continue
            if cohort not in incidents:
                open_alerts.delete(cohort)
                observed, expected, _ = scored.get(cohort, (0, 0.0, None))
                ctx.emit(self._alert(cohort, current, "resolved", end, observed, expected, None, [], {}))

    def _still_elevated(self, scored: tuple[int, float, Any] | None) -> bool:
        """An open alert stays open while its cohort is still well above normal (hysteresis: no flapping
        when the second hour of an outage is merely 2× a busier hour's baseline)."""
        if scored is None:
            return False
        observed, expected, _ = scored
        return observed >= self.test.min_count and observed >= 1.5 * max(expected, 0.1)

    def _alert(
        self,
        cohort: str,
        current: OpenAlert,
        status: str,
        end: float,
        observed: int,
        expected: float,
        spike: Any,
        roots: list[str],
        explained: dict[str, list[tuple[str, float]]],
    ) -> Any:
        ratio = observed / expected if expected > 0 else float("inf")
        variables = {
            "cohort": cohort,
            "observed": observed,
            "expected": round(expected, 1),
            "ratio": round(ratio, 1) if ratio != float("inf") else "∞",
            "p_value": f"{spike.p_value:.1e}" if spike is not None else "",
            "window": self.window_text,
            "window_start": format_rfc3339(end - self.window.size),
            "explained_by": cohort if cohort not in roots else ", ".join(c for c, _ in explained.get(cohort, [])),
        }
        return self.alert(
            parts=(cohort, repr(current.since)),
            status=status,
            starts_at=current.since + self.window.size,
            ends_at=end if status == "resolved" else None,
            labels=current.labels,
            summary=self.summary.render(_Labels(current.labels), variables),
            evidence={
                "cohort": cohort,
                "observed": observed,
                "expected": round(expected, 3),
                "ratio": round(ratio, 3) if ratio != float("inf") else None,
                "score": round(spike.p_value, 12) if spike is not None else None,
                "window_start": format_rfc3339(end - self.window.size),
                "window_seconds": self.window.size,
                "broader_cohorts": roots,
                "drill_down": [{"cohort": c, "contribution": share} for root in roots for c, share in explained.get(root, [])],
            },
        )


class _Labels:
    """Template fields from a cohort's labels (dimensions it does not fix read as empty)."""

    def __init__(self, labels: dict[str, str]) -> None:
        self.labels = labels

    def __getattr__(self, name: str) -> str:
        return self.labels.get(name, "")


register("cohort_spike", CohortSpikeSpec, CohortSpikeRule)
