"""``cohort_silence``: a cohort's complaints stop while its seasonal baseline says several were due.

.. code-block:: yaml

    id: intake-silence
    type: cohort_silence
    title: 投诉进线静默
    severity: major
    on: complaint.opened
    dimensions: [channel, region]      # each channel, each region, and (whole: true) all complaints
    summary: "{cohort} 已 {silent_for} 没有投诉进线（自 {since} 起），按基线应有 {expected} 件"

A channel whose intake breaks (a re-routed line, a dead sync job) shows as
silence, not as a spike. This rule learns each cohort's baseline exactly as
``cohort_spike`` does (the same counting in the cohort stage, the same
hour-of-day means shrunk towards the rule's week, weekday blocks and
dispersion; it *is* a ``cohort_spike`` rule that judges the other tail) and
asks, of the time since a cohort's last complaint: how improbable is it that
none came, given what its baseline expected over exactly that span?

There is no window to tune. The expectation is summed step by step since the
last complaint, so a silence becomes significant after minutes on a
province's hotline at noon, after hours on a county's, and hardly ever at
night, when little was due. Under the negative binomial with the cohort's
dispersion φ, P(no complaint | μ) = (1 + φμ)^(−1/φ) (Poisson: e^(−μ)). Every
complaint starts a new gap, so a cohort with λ complaints a window tests
about λ gaps a window: the rule alerts when that probability falls below
``alpha`` / max(1, λ), i.e. about ``alpha`` false alarms per cohort and
window whatever its volume.

Each cohort keeps one timer, at the end of the step in which its silence
would become significant; when it fires, the cohort either spoke since (the
timer moves on from its last complaint) or is silent (an alert). The work is
one timer per cohort per significant gap, not per step and cohort. A cohort
still warming up (``warmup``) or too small to expect the needed count within
``horizon`` is not watched. A narrower cohort inside a silent broader one
(one channel of a silent whole intake) is covered by the broader alert, and
once that resolves its own silence counts from the broader one's end: a small
channel still quiet a quarter hour after the whole intake came back is the
incident's tail, not a second incident.

An alert starts at the step end where the silence became significant, names
when it began and what was expected, and resolves at the start of the step in
which the cohort's complaints return. Since silence is judged in event time,
the whole intake going quiet is found as soon as the watermark moves on: at
once when the orders and billing streams flow and idle advance is on (a
live worker); in a backtest, when the complaints resume.
"""

from __future__ import annotations

import math
from typing import Any

import msgspec

from detectors.baseline import CohortBaseline, WeekShape
from rules.base import RuleSpec
from rules.conditions import Condition
from rules.errors import SpecError
from rules.registry import register
from rules.types.cohort_incidents import Scored, parse_cohort
from rules.types.cohort_spike import Baseline, CohortSpikeRule, CohortSpikeSpec, _Labels
from rules.window import DEFAULT_TIMEZONE
from yujing.protocols import RuleContext
from yujing.timeutil import format_duration, format_rfc3339, parse_duration

__all__ = ["CohortSilenceRule", "CohortSilenceSpec"]

VARIABLES = frozenset({"cohort", "silent_for", "since", "expected", "p_value"})
#: The timer key of a cohort's silence check (after the step closes' ``close:`` keys at the same time).
SILENT = "silent:"
#: A silence check is set at most this long ahead (seconds): what the cohort's baseline learns meanwhile counts.
RECHECK_AFTER = 86400.0
#: How the whole intake (every complaint of the rule) is named in summaries.
WHOLE = "全部投诉"


class CohortSilenceSpec(RuleSpec, tag="cohort_silence", kw_only=True, forbid_unknown_fields=True):
    """YAML of a ``cohort_silence`` rule."""

    on: str | list[str]
    where: Condition | None = None
    dimensions: list[str]
    depth: int = 1
    whole: bool = True  # also the rule's whole intake
    window: str | int | float = "1h"
    step: str | int | float | None = None  # default: a quarter of the window
    timezone: str = DEFAULT_TIMEZONE
    alpha: float = 1e-5
    dispersion: float = 0.05
    warmup: str | int | float = "7d"
    horizon: str | int | float = "7d"
    max_cohorts: int = 100_000
    forget_after: str | int | float = "28d"


class OpenSilence(msgspec.Struct, array_like=True):
    """A silence alert as stored: since when the cohort was silent, when that became significant, and the
    expectation it was judged on."""

    since: float
    at: float
    expected: float
    p_value: float


class EndedSilence(msgspec.Struct, array_like=True):
    """A silence alert that resolved, kept for ``horizon``: its narrower cohorts' gaps are judged from its end."""

    since: float
    ended: float


class CohortSilenceRule(CohortSpikeRule):
    """Learns cohort baselines as ``cohort_spike`` does; alerts when a cohort's complaints stop against them."""

    detector_kind = "cohort_silence"
    variables = VARIABLES
    judges_spikes = False

    def __init__(self, spec: CohortSilenceSpec, version: str) -> None:
        header = {name: getattr(spec, name) for name in RuleSpec.__struct_fields__}
        super().__init__(
            CohortSpikeSpec(
                **header,
                on=spec.on,
                where=spec.where,
                dimensions=spec.dimensions,
                depth=spec.depth,
                window=spec.window,
                step=spec.step,
                timezone=spec.timezone,
                alpha=spec.alpha,
                dispersion=spec.dispersion,
                warmup=spec.warmup,
                max_cohorts=spec.max_cohorts,
                forget_after=spec.forget_after,
            ),
            version,
        )
        self.whole = spec.whole
        try:
            self.horizon = parse_duration(spec.horizon)
        except ValueError as exc:
            raise SpecError(str(exc), ("horizon",), "durations look like 90s, 15m, 48h, 7d") from None
        if self.horizon < self.window.size:
            raise SpecError("`horizon` must be at least the window", ("horizon",))

    # -- cohorts: the spike rule's, and the whole intake -----------------------
    def _cohorts_of_uncached(self, finest: str) -> list[str]:
        cohorts = super()._cohorts_of_uncached(finest)
        return [*cohorts, ""] if self.whole else cohorts

    # -- the spike rule judges nothing here (judges_spikes), and reports nothing; the baselines still learn --
    def _report(self, scored: dict[str, Scored], end: float, ctx: RuleContext) -> None:
        """No spike scores: this rule's question is the other tail."""

    # -- silence ---------------------------------------------------------------
    def on_timer(self, key: str, fire_at: float, ctx: RuleContext) -> None:
        if key.startswith(SILENT):
            self._check(key[len(SILENT) :], fire_at, ctx)
        else:
            super().on_timer(key, fire_at, ctx)

    def _alerts(self, scored: dict[str, Scored], trailing: dict[str, Any], start: float, ctx: RuleContext) -> None:
        """After a step's close: cohorts that spoke resolve their silence, and are watched from the step's end."""
        opened = ctx.state(f"silence-o:{self.ns}", OpenSilence)
        armed = ctx.state(f"silence-t:{self.ns}", float)
        end = start + self.step.size
        week: WeekShape | None = None
        for cohort in scored:  # the cohorts with complaints in this step (the spike rule's open alerts: none)
            current = opened.get(cohort)
            if current is not None:
                opened.delete(cohort)
                ctx.state(f"silence-e:{self.ns}", EndedSilence).set(cohort, EndedSilence(current.since, start))
                ctx.emit(self._silence_alert(cohort, current, "resolved", ends_at=start))
            if armed.get(cohort) is None:
                if week is None:
                    week = self._week(ctx)
                self._arm(cohort, end, self._baseline(cohort, ctx), week, ctx)

    def _check(self, cohort: str, at: float, ctx: RuleContext) -> None:
        """A cohort's silence check is due: silent since its last complaint for long enough, or watch on."""
        armed = ctx.state(f"silence-t:{self.ns}", float)
        if armed.get(cohort) != at:
            return  # moved or dropped since
        armed.delete(cohort)
        opened = ctx.state(f"silence-o:{self.ns}", OpenSilence)
        stored = ctx.state(f"spike-b:{self.ns}", Baseline).get(cohort)
        if stored is None or opened.get(cohort) is not None:
            return  # forgotten, or already alerting
        baseline = CohortBaseline.from_bytes(stored.values)
        if baseline.windows_seen < self.test.warmup:
            return  # still learning: watched again from its next complaint
        since = self._judged_from(cohort, stored.seen_at + self.step.size, at, opened, ctx)  # after its last complaint
        if since is None:
            self._set(armed, cohort, at + self.step.size, ctx)  # inside a broader silence: one incident, one alert
            return
        week = self._week(ctx)
        expected = self._expected_between(baseline, week, since, at)
        phi = baseline.dispersion(self.test.dispersion)
        if expected < self._needed(baseline, week, phi):
            self._arm(cohort, since, baseline, week, ctx, after=at)  # it spoke since: watch from its last complaint
            return
        current = OpenSilence(since, at, round(expected, 3), _p_zero(expected, phi))
        opened.set(cohort, current)
        ctx.emit(self._silence_alert(cohort, current, "firing"))

    def _arm(
        self, cohort: str, since: float, baseline: CohortBaseline | None, week: WeekShape, ctx: RuleContext, after: float = -math.inf
    ) -> None:
        """Set the cohort's check at the end of the step in which a silence since ``since`` becomes significant, or
        a day on (:data:`RECHECK_AFTER`) if that is later. A cohort that keeps speaking is not armed again, so a check
        planned days ahead rests on the baseline and dispersion of the day it was set: a φ at its cap set the APP
        channel's check three days on, and its silence that afternoon was missed. A check that comes before the
        silence is significant is set again from the cohort's last complaint, with what has been learnt since."""
        if baseline is None or baseline.windows_seen < self.test.warmup:
            return
        due = self._significant_at(baseline, week, since)
        if due is not None:
            soonest = after + self.step.size
            at = min(max(due, soonest), max(since, soonest) + RECHECK_AFTER)
            self._set(ctx.state(f"silence-t:{self.ns}", float), cohort, at, ctx)

    def _set(self, armed: Any, cohort: str, at: float, ctx: RuleContext) -> None:
        armed.set(cohort, at)
        ctx.set_timer(self.rule_id, SILENT + cohort, at)

    def _needed(self, baseline: CohortBaseline, week: WeekShape, phi: float) -> float:
        """The expected count over a gap with no complaint at which the gap is significant: P(0 | μ) ≤ alpha / λ,
        λ the cohort's complaints in an average window (that many gaps tested a window)."""
        per_window = sum(baseline.hour_mean(h, week) for h in range(24)) / 24 * self.window.size / 3600.0
        level = self.test.alpha / max(1.0, per_window)
        if phi > 0:
            return (level ** (-phi) - 1.0) / phi
        return -math.log(level)

    def _significant_at(self, baseline: CohortBaseline, week: WeekShape, since: float) -> float | None:
        """The end of the first step at which the expectation summed from ``since`` reaches what is needed, within
        ``horizon`` (``None``: a cohort too small to tell a silence from its ordinary quiet)."""
        phi = baseline.dispersion(self.test.dispersion)
        needed = self._needed(baseline, week, phi)
        steps = int(self.horizon // self.step.size)
        total, reached_at = self._summed(baseline, week, since, since + steps * self.step.size, stop_at=needed)
        return reached_at if total >= needed else None

    def _expected_between(self, baseline: CohortBaseline, week: WeekShape, begin: float, end: float) -> float:
        """The cohort's expected complaints over the steps from ``begin`` to ``end``."""
        return self._summed(baseline, week, begin, end)[0]

    def _summed(
        self, baseline: CohortBaseline, week: WeekShape, begin: float, end: float, stop_at: float = math.inf
    ) -> tuple[float, float]:
        """The expectation summed step by step from ``begin`` until ``end`` or until it reaches ``stop_at``, and the
        step end where it stopped. One baseline lookup per hour."""
        size = self.step.size
        total, t, hour_key, per_step = 0.0, begin, None, 0.0
        while t < end - 1e-6:
            key = int((t + self.utc_offset) // 3600)
            if key != hour_key:
                hour_key, per_step = key, self._expected(baseline, week, t, 0.0)
            total += per_step
            t += size
            if total >= stop_at:
                break
        return total, t

    def _judged_from(self, cohort: str, since: float, at: float, opened: Any, ctx: RuleContext) -> float | None:
        """When the cohort's own silence counts from: ``None`` while a broader cohort (fewer dimensions fixed, the
        whole intake too) is silent with an alert open; else after the end of any broader silence that overlapped
        its gap (a small channel still quiet a quarter hour after the whole intake came back is that incident's
        tail, not a new one)."""
        mine = frozenset(parse_cohort(cohort))
        if any(k != cohort and frozenset(parse_cohort(k)) <= mine for k, _ in opened.items()):
            return None
        ended = ctx.state(f"silence-e:{self.ns}", EndedSilence)
        for k, e in list(ended.items()):
            if e.ended < at - self.horizon:
                ended.delete(k)  # forgotten: no gap still open began before it
            elif k != cohort and e.ended > since and frozenset(parse_cohort(k)) <= mine:
                since = e.ended
        return since

    def _baseline(self, cohort: str, ctx: RuleContext) -> CohortBaseline | None:
        stored = ctx.state(f"spike-b:{self.ns}", Baseline).get(cohort)
        return None if stored is None else CohortBaseline.from_bytes(stored.values)

    def _silence_alert(self, cohort: str, current: OpenSilence, status: str, ends_at: float | None = None) -> Any:
        """The alert of a silent cohort; its numbers are the decision's (the span, its expectation, P(0))."""
        labels = dict(parse_cohort(cohort))
        span = current.at - current.since
        local = current.since + self.utc_offset
        variables = {
            "cohort": cohort or WHOLE,
            "silent_for": format_duration(span),
            "since": f"{int(local // 3600 % 24):02d}:{int(local // 60 % 60):02d}",
            "expected": round(current.expected, 1),
            "p_value": f"{current.p_value:.1e}",
        }
        return self.alert(
            parts=(cohort, repr(current.since)),
            status=status,
            starts_at=current.at,
            ends_at=ends_at,
            labels=labels,
            summary=self.summary.render(_Labels(labels), variables),
            evidence={
                "cohort": cohort or WHOLE,
                "observed": 0,
                "expected": current.expected,
                "score": current.p_value,
                "silent_since": format_rfc3339(current.since),
                "span_seconds": span,
                "window_seconds": self.window.size,
            },
        )


def _p_zero(expected: float, phi: float) -> float:
    """P(no complaint) when ``expected`` were due: negative binomial with dispersion φ, Poisson at φ = 0."""
    if phi > 0:
        return round(float((1.0 + phi * expected) ** (-1.0 / phi)), 12)
    return round(math.exp(-expected), 12)


register("cohort_silence", CohortSilenceSpec, CohortSilenceRule)
