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
stage (:mod:`yujing.cohort`), which counts them per ``step`` (default a quarter
of the window) and per finest cohort (every dimension fixed). When a step
closes (the watermark passes its end) each active cohort is judged against its
baseline (:mod:`detectors.baseline`: the cohort's hour-of-day means, shrunk
towards its share of the rule's when it is small, × the rule's 168
hour-of-week factors learnt from all its complaints, × the cohort's own
weekday × 4-hour-block factors as far as its volume teaches them, learnt
online once per window; significance from the
negative-binomial tail, Poisson with ``dispersion: 0``, with a low-volume guard)
on the spans ending now: half a window, the window, two and three windows
(each at ``alpha`` / spans). Judging a trailing window every step rather than
tumbling windows at their end finds an incident as soon as its evidence
suffices, not at the next full hour. Cohorts idle for some steps catch up
with zero counts when next seen, so quiet hours are learnt without touching
idle state.

One incident, one alert:

* a spiking cohort whose broader cohort also spikes, or has an open alert and
  is still elevated, is covered by that broader alert;
* spiking broad cohorts explained mostly by one shared narrower cohort (the
  drill-down, by contribution to the change, as in ThirdEye) become one alert
  about that narrower cohort;
* a cohort of other dimensions whose spike is the overlap with a stronger
  incident (a plan charged twice lifts each region's hotline too) joins that
  incident's alert (:func:`~detectors.baseline.explained_by`).

An alert fires at the end of the step that showed it and resolves at the end
of the first step whose trailing window is back below 1.5 × its baseline
(hysteresis: an outage's second hour that is "only" twice a busier hour's
baseline does not resolve and re-fire), or, for a small cohort whose hour
holds fewer than ``min_count`` complaints, when the longest span (three
windows) is too.

State (per rule): the rule's week (:class:`~detectors.baseline.WeekShape`,
1,444 bytes), one baseline and the last three windows' steps per cohort
(:data:`BASELINE_BYTES` stored), at most ``max_cohorts`` of them (new cohorts
beyond are counted, not kept), forgotten after ``forget_after`` without
complaints; finest-cohort counts per step for the trailing window.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from typing import Any

import msgspec
import numpy as np

from detectors.baseline import CohortBaseline, Cusum, RecentBuckets, Spike, SpikeTest, WeekShape
from rules.base import RuleHeader, RuleSpec
from rules.conditions import Condition, compile_condition
from rules.errors import SpecError
from rules.registry import register
from rules.types.cohort_incidents import Counts, Scored, add_counts, cohort_key, group_incidents, parse_cohort
from rules.types.match import event_types
from rules.window import DEFAULT_TIMEZONE, Window, WindowCloser, parse_utc_offset
from yujing.cohort import CohortRecord
from yujing.events import Event
from yujing.protocols import KeyedState, RuleContext
from yujing.scores import Score
from yujing.timeutil import format_duration, format_rfc3339, parse_duration

__all__ = ["BASELINE_BYTES", "CohortSpikeRule", "CohortSpikeSpec"]

VARIABLES = frozenset({"cohort", "observed", "expected", "ratio", "p_value", "window", "window_start", "explained_by"})
DIMENSIONS = ("region", "product", "channel", "tier")
#: How many missed windows a returning cohort replays as zeros (a week of hours); beyond, the rest is skipped.
MAX_CATCH_UP = 24 * 7
#: A spike is judged on spans ending now of up to SPAN windows.
SPAN = 3
#: Scores reported per judged step: the most unusual cohorts (yujing.scores).
SCORES_TOP = 20


class CohortSpikeSpec(RuleSpec, tag="cohort_spike", kw_only=True, forbid_unknown_fields=True):
    """YAML of a ``cohort_spike`` rule."""

    on: str | list[str]
    where: Condition | None = None
    dimensions: list[str]
    depth: int = 2
    rate_of: str | list[str] | None = None
    rate_where: Condition | None = None
    window: str | int | float = "1h"
    step: str | int | float | None = None  # default: a quarter of the window
    timezone: str = DEFAULT_TIMEZONE
    alpha: float = 1e-6
    dispersion: float = 0.05
    min_count: int = 5
    min_ratio: float = 2.0
    warmup: str | int | float = "7d"
    max_cohorts: int = 100_000
    forget_after: str | int | float = "28d"
    explain_share: float = 0.5


class Baseline(msgspec.Struct, array_like=True):
    """A cohort's stored state: the learnt float32 baseline, its last steps, and when it was last seen."""

    values: bytes
    last: float  # start of the newest step in ``recent``
    seen_at: float  # last step with a complaint (for forgetting)
    recent: bytes = b""  # RecentBuckets of the last SPAN windows' steps
    cusum: list[float] = msgspec.field(default_factory=list)  # Cusum: score, observed, expected


class Week(msgspec.Struct, array_like=True):
    """The rule's stored :class:`~detectors.baseline.WeekShape` (float32 bytes)."""

    values: bytes


class OpenAlert(msgspec.Struct, array_like=True):
    since: float  # start of the step that first showed the spike
    labels: dict[str, str]


#: Stored bytes per cohort baseline at most: the float32 values, three values for each of the last
#: three hours' steps (at the default step of a quarter hour), two times, msgpack framing, and a key
#: of up to 64 bytes (``region=…,product=…``).
BASELINE_BYTES = 69 * 4 + SPAN * 4 * 3 * 4 + 2 * 9 + 12 + 28 + 64


class CohortSpikeRule(RuleHeader):
    """Counts complaints per cohort and step in the cohort stage; alerts on significant spikes."""

    cohort = True
    source = "cohort_spike"
    #: What ``yujing eval`` calls this detector (the alert contract's ``source`` has no more kinds).
    detector_kind = "cohort_spike"
    #: The summary template's variables.
    variables = VARIABLES
    #: Whether a step's cohorts are judged for spikes (spans and CUSUM). A rule that only learns the baselines
    #: for a question of its own (``cohort_silence``) turns it off.
    judges_spikes = True

    def __init__(self, spec: CohortSpikeSpec, version: str) -> None:
        super().__init__(spec, version, self.variables, ())
        self.event_types = event_types(spec.on, ("on",))
        self.when = compile_condition(spec.where, on=self.event_types)
        self.rate_types = event_types(spec.rate_of, ("rate_of",)) if spec.rate_of else frozenset()
        if self.rate_types & self.event_types:
            raise SpecError("`rate_of` must name other event types than `on`", ("rate_of",))
        self.rate_when = compile_condition(spec.rate_where, ("rate_where",), on=self.rate_types)
        self.event_types = self.event_types | self.rate_types
        unknown = [d for d in spec.dimensions if d not in DIMENSIONS]
        if unknown or not spec.dimensions:
            raise SpecError(f"unknown dimension `{unknown[0] if unknown else ''}`", ("dimensions",), f"use some of {', '.join(DIMENSIONS)}")
        self.dimensions = tuple(spec.dimensions)
        if not 1 <= spec.depth <= len(self.dimensions):
            raise SpecError(f"`depth` must be between 1 and {len(self.dimensions)}", ("depth",))
        self.combos = [c for r in range(1, spec.depth + 1) for c in itertools.combinations(range(len(self.dimensions)), r)]
        self.window = Window.from_spec(spec.window, "tumbling", spec.timezone)
        if self.window.size > 3600 or 3600 % self.window.size > 1e-9:
            # The baseline learns each hour of the day (and weekday): a window must lie inside one hour. A one-day
            # window learnt only midnight's mean, and divided by it: "预期 0（3981314.4 倍）".
            raise SpecError(
                f"`window` must divide an hour (the baseline learns each hour of the day), not {spec.window}",
                ("window",),
                "use 15m, 30m or 1h: spans of up to three windows are judged too, and slow rises by the CUSUM",
            )
        self.step = Window.from_spec(spec.step if spec.step is not None else self.window.size / 4, "tumbling", spec.timezone, ("step",))
        per_window = self.window.size / self.step.size
        if abs(per_window - round(per_window)) > 1e-9:
            raise SpecError("`step` must divide the window", ("step",), "e.g. window: 1h, step: 15m")
        self.per_window = round(per_window)
        #: Spans judged, in steps: half a window (when it is whole steps), one, two and three windows.
        self.spans = sorted({n for n in (self.per_window // 2, self.per_window, 2 * self.per_window, SPAN * self.per_window) if n >= 1})
        self.kept_steps = SPAN * self.per_window
        #: The newest half window, in steps: where a rise must still be on (and what a gathering cohort decides on).
        self.half_steps = max(1, self.per_window // 2)
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
        self.span_test = dataclasses.replace(self.test, alpha=spec.alpha / len(self.spans))
        self.cusum_threshold = -math.log(spec.alpha)
        self.still_on_alpha = math.sqrt(spec.alpha)
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
        self.closer = WindowCloser(self.step, self.rule_id)
        self._cohorts_cache: dict[str, list[str]] = {}  # a pure function's results, not state
        self.forget_cached()  # nothing read from state yet

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
        key = f"{start!r}|" + cohort_key(tuple((d, v) for d in self.dimensions if (v := record.labels.get(d)) is not None))
        c = counts.get(key) or Counts()
        if record.event_id in c.event_ids:
            return  # a redelivery: counted already
        c.event_ids.append(record.event_id)
        if record.role == "num":
            c.numerator += 1
        else:
            c.denominator += 1
        counts.set(key, c)
        self._steps(counts).setdefault(start, {})[key] = None

    def on_timer(self, key: str, fire_at: float, ctx: RuleContext) -> None:
        start = self.closer.closing(key)
        if start is None:
            return
        counts = ctx.state(f"spike-n:{self.ns}", Counts)
        oldest = start - (self.per_window - 1) * self.step.size  # the trailing window's first step
        trailing: dict[str, Counts] = {}  # finest cohort → counts over the trailing window
        now: dict[str, Counts] = {}  # every cohort → counts of this step
        steps = self._steps(counts)
        for step_start in [s for s in steps if s < oldest - 1e-6]:
            for k in steps.pop(step_start):
                counts.delete(k)
        for step_start, keys in steps.items():
            if step_start > start + 1e-6:
                continue  # a later step, still open
            for k in keys:
                c = counts.get(k)
                if c is None:
                    continue
                finest = k.partition("|")[2]
                add_counts(trailing, finest, c)
                if abs(step_start - start) < 1e-6:
                    for cohort in self._cohorts_of(finest):
                        add_counts(now, cohort, c)
        weeks = ctx.state(f"spike-w:{self.ns}", Week)
        week = self._week(ctx)
        scored = self._score(now, start, week, ctx)
        end = start + self.step.size
        if abs(self.window.start_of(end) - end) < 1e-6:  # the step ends a window: the rule's week learns it
            self._learn_week(week, trailing, end - self.window.size)
            weeks.set("week", Week(week.state.tobytes()))
        self._report(scored, end, ctx)
        self._alerts(scored, trailing, start, ctx)

    def _steps(self, counts: KeyedState[Counts]) -> dict[float, dict[str, None]]:
        """The count keys in state by step (read from it once per rule object; kept by the rule's own writes)."""
        if self.step_keys is None:
            self.step_keys = {}
            for k, _ in counts.items():
                self.step_keys.setdefault(float(k.partition("|")[0]), {})[k] = None
        return self.step_keys

    def forget_cached(self) -> None:
        """State may have changed behind the rule (a recovery): read the step index from it again.

        The stored count keys by step, read from state on first use and kept with it: a step reads its trailing
        window's counts, not every step's (a worker reading one partition ahead keeps counts of later steps)."""
        self.step_keys: dict[float, dict[str, None]] | None = None

    def _week(self, ctx: RuleContext) -> WeekShape:
        """The rule's stored week (fresh before its first window is learnt)."""
        stored = ctx.state(f"spike-w:{self.ns}", Week).get("week")
        return WeekShape.from_bytes(stored.values) if stored else WeekShape.fresh()

    def _report(self, scored: dict[str, Scored], end: float, ctx: RuleContext) -> None:
        """The most unusual cohorts' trailing windows as scores: -log10 of the count model's tail probability
        (after the warm-up; ranked first by a z-like excess so only the top few tails are computed)."""
        rising = [(k, s) for k, s in scored.items() if s.warm and s.observed > s.expected]
        rising.sort(key=lambda ks: -(ks[1].observed - ks[1].expected) / math.sqrt(max(ks[1].expected, 0.1)))
        out = []
        for cohort, s in rising[: 2 * SCORES_TOP]:
            significance = round(-math.log10(max(self.test.tail(s.observed, s.expected, s.dispersion), 1e-300)), 3)
            out.append(Score(self.rule_id, self.source, cohort, end, significance, s.observed, round(s.expected, 3)))
        out.sort(key=lambda sc: -sc.score)
        if out:
            ctx.score(out[:SCORES_TOP])

    def _cohorts_of(self, finest: str) -> list[str]:
        """Every cohort a finest cohort belongs to (its dimensions alone and in pairs; cached per key)."""
        cached = self._cohorts_cache.get(finest)
        if cached is None:
            if len(self._cohorts_cache) >= self.max_cohorts:
                self._cohorts_cache.clear()
            cached = self._cohorts_cache[finest] = self._cohorts_of_uncached(finest)
        return cached

    def _cohorts_of_uncached(self, finest: str) -> list[str]:
        labels = dict(parse_cohort(finest))
        values = [labels.get(d) for d in self.dimensions]
        return [
            cohort_key(tuple((self.dimensions[i], values[i]) for i in combo))  # type: ignore[misc]
            for combo in self.combos
            if all(values[i] is not None for i in combo)
        ]

    def _season(self, start: float) -> tuple[int, int]:
        local = start + self.utc_offset
        days = int(local // 86400)
        return int(local % 86400 // 3600), (days + 3) % 7  # 1970-01-01 was a Thursday: weekday 3

    def _learn_week(self, week: WeekShape, window: dict[str, Counts], window_start: float) -> None:
        """The rule's week learns a window of all its complaints (or of their rate), clipped like a cohort's."""
        numerator = sum(c.numerator for c in window.values())
        denominator = sum(c.denominator for c in window.values())
        if self.rate_types:
            if denominator <= 0:
                return
            numerator /= denominator
        hour, day = self._season(window_start)
        learnt, _ = self._clipped(numerator, week.expected(hour, day), week.windows_seen)
        week.update(learnt, hour, day)

    def _clipped(self, value: float, expected: float, windows_seen: int) -> tuple[float, bool]:
        """What a window teaches a baseline: at most min_ratio × what was expected once warm (an incident must
        not lift the baseline it is judged by), and whether it was clipped (an outlier)."""
        cap = self.test.min_ratio * expected
        outlier = windows_seen >= self.test.warmup and expected > 0 and value > cap
        return (cap if outlier else value), outlier

    def _expected(self, baseline: CohortBaseline, week: WeekShape, step_start: float, denominator: float) -> float:
        """What a step was expected to hold: a share of its hour's count, or the learnt rate × denominators."""
        hour, day = self._season(step_start)
        if self.rate_types:
            return baseline.expected(hour, day, week) * denominator
        return baseline.expected(hour, day, week) / self.per_window

    def _push(
        self,
        baseline: CohortBaseline,
        week: WeekShape,
        recent: RecentBuckets,
        cusum: Cusum,
        step_start: float,
        numerator: float,
        denominator: float,
    ) -> float:
        """Add one step to a cohort's recent steps and its CUSUM; when it ends a window, learn that window.
        Returns its expectation."""
        expected = self._expected(baseline, week, step_start, denominator)
        recent.push(numerator, denominator, expected)
        if baseline.windows_seen >= self.test.warmup:
            cusum.step(numerator, expected, self.test.min_ratio, self._step_dispersion(baseline))
        end = step_start + self.step.size
        if abs(self.window.start_of(end) - end) < 1e-6:  # the step ends a window: learn the window
            total, per, window_expected = recent.total(self.per_window)
            hour, day = self._season(end - self.window.size)
            learnt, outlier = self._clipped(total, window_expected, baseline.windows_seen)
            if not self.rate_types:
                baseline.update(learnt, hour, day, outlier=outlier, week=week, volume=window_expected, fit=False)
            elif per > 0:
                baseline.update(learnt / per, hour, day, outlier=outlier, week=week, volume=window_expected, fit=False)
            self._learn_fit(baseline, recent)
        return expected

    def _learn_fit(self, baseline: CohortBaseline, recent: RecentBuckets) -> None:
        """Teach the dispersion the oldest window the recent steps hold (:meth:`~detectors.baseline.CohortBaseline.learn_fit`),
        with the expectation it had then: a window is learnt two windows after it ended, when only the longest span
        still reaches it, unless it was an outlier.

        A window taught it as it ended. An app's broken login lifted its channel from 19 expected to 37 in its first
        hour, short of significance. That one hour raised the channel's φ from 0.016 to 0.069, and the next hours of
        the same incident were judged by a tail four times wider: 41 against 17.8 in an hour was no spike (500 a
        day, seed 2; an oracle knew in a quarter hour, the alert came after 72 minutes)."""
        older = (SPAN - 1) * self.per_window
        newer_count, newer_per, newer_expected = recent.total(older)
        count, per, expected = (a - b for a, b in zip(recent.total(self.kept_steps), (newer_count, newer_per, newer_expected), strict=True))
        if expected <= 0 or self._clipped(count, expected, baseline.windows_seen)[1]:
            return  # not yet a window (a cohort's first hours), or an outlier, which teaches no dispersion
        if not self.rate_types:
            baseline.learn_fit(count, expected)
        elif per > 0:
            baseline.learn_fit(count / per, expected / per)

    def _step_dispersion(self, baseline: CohortBaseline) -> float:
        """The φ a step's CUSUM increment takes: the window's × its steps. The baseline learns φ from whole
        windows, and a window's steps share its excess (a busy hour is busy in each of its quarter hours): with
        k·φ, a window's k step increments add up to exactly the negative binomial's log-likelihood ratio of the
        window's total at φ (:class:`~detectors.baseline.Cusum`). With φ itself, each quarter hour counted as
        independent evidence, and the tweet series of ``bench/nab_tweets.py`` piled up four times the evidence
        their ordinary hours held."""
        return baseline.dispersion(self.test.dispersion) * self.per_window

    def _catch_up(self, baseline: CohortBaseline, week: WeekShape, recent: RecentBuckets, cusum: Cusum, last: float, missed: int) -> None:
        """The ``missed`` quiet steps after ``last``, as if each had been pushed (:meth:`_push`).

        Whole windows of the gap that lie before the steps ``recent`` keeps are learnt a window at a
        time: a quiet window teaches its baseline nothing but zero, against an expectation that is
        the same at each of its steps (the baseline learns only at window ends), so one expectation,
        the CUSUM's steps while it is above zero (after that a quiet step keeps it there), and one
        update give what its steps one by one gave. A cohort back after a quiet day costs its
        windows, not four times as many pushes, each shifting its recent steps.
        """
        size, per_window = self.step.size, self.per_window
        step = 0
        while step < missed and abs(self.window.start_of(last + (step + 1) * size) - (last + (step + 1) * size)) > 1e-6:
            step += 1  # to the first window's start: the window the cohort was last seen in is finished step by step
            self._push(baseline, week, recent, cusum, last + step * size, 0.0, 0.0)
        whole = max(0, (missed - step - self.kept_steps) // per_window)  # windows before those recent keeps
        for _ in range(whole):
            window_start = last + (step + 1) * size
            expected = self._expected(baseline, week, window_start, 0.0)
            if baseline.windows_seen >= self.test.warmup and cusum.score > 0:
                dispersion = self._step_dispersion(baseline)
                for _ in range(per_window):
                    cusum.step(0.0, expected, self.test.min_ratio, dispersion)
            hour, day = self._season(window_start)
            # what the window's recent rows would sum to: float32 expectations added in float64 (exact)
            volume = per_window * float(np.float32(expected))
            if not self.rate_types:
                baseline.update(0.0, hour, day, outlier=False, week=week, volume=volume)
            step += per_window
        for i in range(step, missed):
            self._push(baseline, week, recent, cusum, last + (i + 1) * size, 0.0, 0.0)

    def _score(self, now: dict[str, Counts], start: float, week: WeekShape, ctx: RuleContext) -> dict[str, Scored]:
        """Per cohort active in this step or with an open alert: its trailing window and spike; baselines learn."""
        baselines = ctx.state(f"spike-b:{self.ns}", Baseline)
        meta = ctx.state(f"spike-m:{self.ns}", int)
        open_alerts = ctx.state(f"spike-o:{self.ns}", OpenAlert)
        size = self.step.size
        kept = meta.get("cohorts") or 0
        out: dict[str, Scored] = {}
        under = [frozenset(parse_cohort(k)) for k, _ in open_alerts.items()]
        for cohort in sorted(set(now) | {k for k, _ in open_alerts.items()}):
            c = now.get(cohort) or Counts()
            stored = baselines.get(cohort)
            if stored is None:
                if kept >= self.max_cohorts:
                    self.dropped_cohorts += 1
                    continue
                kept += 1
                baseline, recent, last = CohortBaseline.fresh(), RecentBuckets.empty(self.kept_steps), start - size
                cusum = Cusum()
            else:
                baseline = CohortBaseline.from_bytes(stored.values)
                recent, last = RecentBuckets.from_bytes(stored.recent, self.kept_steps), stored.last
                cusum = Cusum.from_list(stored.cusum)
            missed = round((start - last) / size) - 1
            if missed > MAX_CATCH_UP * self.per_window:  # long gone: skip ahead, whole windows of zeros only
                recent, last = RecentBuckets.empty(self.kept_steps), self.window.start_of(start - MAX_CATCH_UP * self.window.size) - size
                missed = round((start - last) / size) - 1
            self._catch_up(baseline, week, recent, cusum, last, max(missed, 0))
            seen, dispersion = baseline.windows_seen, baseline.dispersion(self.test.dispersion)
            self._push(baseline, week, recent, cusum, start, float(c.numerator), float(c.denominator))
            window, newest = recent.total(self.per_window), recent.total(self.half_steps)  # once per cohort and step
            spike, span, sustained = None, 0, False
            if self.judges_spikes:
                spike, span = self._test(recent, seen, dispersion, window, newest)
                if spike is None:
                    spike, span = self._sustained(cusum, newest)
                    sustained = spike is not None
            if spike is not None or self._under(cohort, under):
                # An alarm restarts the CUSUM (Page), and a cohort inside an open alert piles up no evidence
                # of its own: the incident's pile must not alarm in its tail.
                cusum = Cusum()
            (observed, _, expected), (newest_observed, _, newest_expected) = window, newest
            long_observed, _, long_expected = recent.total(self.kept_steps)
            seen_at = start if c.numerator or stored is None else stored.seen_at
            baselines.set(cohort, Baseline(baseline.state.tobytes(), start, seen_at, recent.tobytes(), cusum.as_list()))
            out[cohort] = Scored(
                round(observed),
                expected,
                spike,
                span * size,
                dispersion,
                seen >= self.test.warmup,
                round(long_observed),
                long_expected,
                sustained,
                round(newest_observed),
                newest_expected,
                self.half_steps * size,
            )
        meta.set("cohorts", kept)
        if int(start // 86400) != int((start + size) // 86400):  # once a day: forget cohorts long quiet
            self._forget(baselines, meta, start)
        return out

    @staticmethod
    def _under(cohort: str, alerts: list[frozenset[tuple[str, str]]]) -> bool:
        """Whether ``cohort`` is an open alert's cohort or narrower than one."""
        if not alerts:
            return False
        mine = frozenset(parse_cohort(cohort))
        return any(a <= mine for a in alerts)

    def _test(
        self,
        recent: RecentBuckets,
        seen: int,
        dispersion: float,
        window: tuple[float, float, float],
        newest_half: tuple[float, float, float],
    ) -> tuple[Spike | None, int]:
        """The spans ending now, shortest first, each at alpha / spans (Bonferroni). A span longer than
        the window (a sustained rise no single hour shows) counts only while the rise is still on: the
        trailing window holds ``min_ratio`` × its expectation at a tail probability of √alpha, and its newer
        half ``min_ratio`` × its own, so the tail of an incident that has ended does not raise a new alert.
        ``min_count`` is the judged span's (:class:`~detectors.baseline.SpikeTest`), not the trailing window's:
        asked of the window, it kept a small city's outage of 4, 5 and 5 complaints an hour (where 0.55 were
        due) from ever being summed over its three hours. ``window`` and ``newest_half``: ``recent``'s totals
        over them (:meth:`RecentBuckets.total`)."""
        (observed, _, expected), (newest, _, newest_expected) = window, newest_half
        ratio = self.test.min_ratio
        high = observed >= ratio * max(expected, 0.1) and newest >= ratio * max(newest_expected, 0.05)
        # …and the trailing window is unusual on its own (at √alpha): a noisy hour beside an incident's tail is not.
        still_on = high and self.test.tail(round(observed), expected, dispersion) <= self.still_on_alpha
        for n in self.spans:
            if n > self.per_window and not still_on:
                break
            total, _, total_expected = recent.total(n)
            spike = self.span_test(round(total), total_expected, seen, dispersion)
            if spike is not None:
                return spike, n
        return None, 0

    def _sustained(self, cusum: Cusum, newest_half: tuple[float, float, float]) -> tuple[Spike | None, int]:
        """A rise too small for any span but sustained: the CUSUM past ``−ln alpha``, with the low-volume
        guard on what it has piled up, while the newest half window is still ``min_ratio`` × its expectation.
        Its span, in steps: those since the CUSUM left zero, which its count and expectation add up.
        ``newest_half``: the recent steps' totals over it (:meth:`RecentBuckets.total`)."""
        if cusum.score < self.cusum_threshold or cusum.observed < self.test.min_count:
            return None, 0
        if cusum.observed < self.test.min_ratio * max(cusum.expected, 0.1):
            return None, 0
        newest, _, newest_expected = newest_half
        if newest < self.test.min_ratio * max(newest_expected, 0.05):
            return None, 0
        # its span: the steps since the CUSUM left zero (0 when stored before they were counted)
        return Spike(round(cusum.observed), cusum.expected, math.exp(-cusum.score)), cusum.steps

    def _forget(self, baselines: Any, meta: Any, now: float) -> None:
        old = [k for k, b in baselines.items() if now - b.seen_at > self.forget_after]
        for k in old:
            baselines.delete(k)
        if old:
            meta.set("cohorts", max(0, (meta.get("cohorts") or 0) - len(old)))

    def _alerts(self, scored: dict[str, Scored], trailing: dict[str, Counts], start: float, ctx: RuleContext) -> None:
        open_alerts = ctx.state(f"spike-o:{self.ns}", OpenAlert)
        covering = {k for k, _ in open_alerts.items() if self._still_elevated(scored.get(k))}
        opened = {k for k, _ in open_alerts.items()}
        # An alert resolved less than a window ago still quiets its cohort and the narrower ones: what is left of
        # its incident in their trailing spans is not a new one.
        cooling = ctx.state(f"spike-r:{self.ns}", float)
        for cohort, resolved_at in list(cooling.items()):
            if start - resolved_at >= self.window.size:
                cooling.delete(cohort)
        spiking = {k for k, v in scored.items() if v.spike is not None}
        quiet = {k for k, _ in cooling.items()} | (opened - covering - spiking)  # and those resolving now
        incidents, explained = group_incidents(scored, trailing, opened, covering, self.test, self.explain_share, quiet)
        end = start + self.step.size
        for cohort, roots_of in sorted(incidents.items()):
            s = scored[cohort]
            # the decision: this cohort's own spike (or, gathering its spiking children, its newest half window's),
            # else the spike of the broader cohort that explains it
            deciding = cohort if s.spike is not None else next((r for r in roots_of if scored[r].spike is not None), cohort)
            current = open_alerts.get(cohort)
            if current is None:
                current = OpenAlert(start, dict(parse_cohort(cohort)))
                open_alerts.set(cohort, current)
            ctx.emit(self._alert(cohort, current, "firing", end, s, deciding, scored[deciding], roots_of, explained))
        for cohort, current in list(open_alerts.items()):
            if cohort in incidents:
                continue
            if cohort in covering:
                ctx.emit(self._alert(cohort, current, "firing", end, scored[cohort], cohort, scored[cohort], [], {}))
                continue
            open_alerts.delete(cohort)
            cooling.set(cohort, start)
            quiet_now = scored.get(cohort) or Scored(0, 0.0)
            ctx.emit(self._alert(cohort, current, "resolved", end, quiet_now, cohort, quiet_now, [], {}))

    def _still_elevated(self, scored: Scored | None) -> bool:
        """An open alert stays open while its cohort is still well above normal (hysteresis: no flapping
        when the second hour of an outage is merely 2× a busier hour's baseline): its trailing window at
        1.5 × its expectation, with ``min_count`` complaints in it or, for a small cohort whose hour holds
        fewer, over the longest span (a campaign of six complaints an hour does not resolve on an hour of four)."""
        if scored is None or scored.observed < 1.5 * max(scored.expected, 0.1):
            return False
        if scored.observed >= self.test.min_count:
            return True
        return scored.long_observed >= self.test.min_count and scored.long_observed >= 1.5 * max(scored.long_expected, 0.1)

    def _alert(
        self,
        cohort: str,
        current: OpenAlert,
        status: str,
        end: float,
        scored: Scored,
        deciding: str,
        decided: Scored,
        roots: list[str],
        explained: dict[str, list[tuple[str, float]]],
    ) -> Any:
        """The alert of ``cohort``; its numbers are the decision's: the spike's count and expectation over the
        span that showed it, of the cohort that showed it (``deciding``: this one, or the broader one whose
        drill-down named this one; the summary names it, and this one as what explains it), else the trailing
        window's (an open alert kept open, a resolve)."""
        spike = decided.spike
        if spike is not None:
            observed, expected = spike.observed, float(spike.expected)
            span = format_duration(decided.span) if decided.span else ""
            if decided.sustained:  # the CUSUM's: a rise sustained over the span since it left zero
                span = f"{span}（持续上升）" if span else "持续上升期"
        else:
            observed, expected, span = scored.observed, float(scored.expected), self.window_text
        ratio = observed / expected if expected > 0 else float("inf")
        window_start = end - self.window.size
        variables = {
            "cohort": deciding,
            "observed": observed,
            "expected": round(expected, 1),
            "ratio": round(ratio, 1) if ratio != float("inf") else "∞",
            "p_value": f"{spike.p_value:.1e}" if spike is not None else "",
            "window": span,
            "window_start": format_rfc3339(window_start),
            # what explains the deciding cohort's change: its drill-down, or this narrower cohort it named
            "explained_by": ", ".join(c for c, _ in explained.get(cohort, [])) if cohort == deciding else cohort,
        }
        return self.alert(
            parts=(cohort, repr(current.since)),
            status=status,
            starts_at=current.since + self.step.size,
            ends_at=end if status == "resolved" else None,
            labels=current.labels,
            summary=self.summary.render(_Labels(current.labels), variables),
            evidence={
                "cohort": cohort,
                "decided_by": deciding,  # the cohort whose count, expectation and span these are
                "observed": observed,
                "expected": round(expected, 3),
                "ratio": round(ratio, 3) if ratio != float("inf") else None,
                "score": round(spike.p_value, 12) if spike is not None else None,
                "span_seconds": decided.span if spike is not None and decided.span else None,
                "sustained": decided.sustained if spike is not None else None,  # the CUSUM decided, over span_seconds
                "window_observed": scored.observed,
                "window_expected": round(scored.expected, 3),
                "window_start": format_rfc3339(window_start),
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
