"""Cohort spikes: an online seasonal baseline per cohort and a count-model significance test.

A cohort's expected complaints in a window are

    hour_mean[h] × week[d, h] × own_block[d, h // 4]          (counts)
    hour_mean[h] × week[d, h] × own_block[d, h // 4] × den    (rates: learnt per denominator event)

learnt online. Each hour of the day keeps the cohort's own mean of what that
hour saw (a running mean for the first days, then exponentially weighted, so
it follows a drift within a couple of weeks). For a small cohort that mean
rests on a handful of complaints, so it is shrunk towards the cohort's share
of the whole rule's hour (a gamma prior worth :data:`PRIOR_COMPLAINTS`
complaints): a cohort of one complaint an hour leans on it, a busy one keeps
its own shape. ``week[d, h]`` is the rule's (:class:`WeekShape`): 168
hour-of-week factors learnt from all its complaints together, so one Monday
already shows how much busier Monday noon is, to within a few per cent, and a
Monday peak that ends at 13:00 ends there. Each cohort learnt its own weekday
× 4-hour-block factors before; from a cohort's two complaints an hour those
were noise, and under-predicted some of its hours by half (the largest source
of false alarms). A cohort's own 42 block factors (7 weekdays × six 4-hour
blocks) remain, for what is truly its own (a shop channel closed on
Sundays), but learn only in proportion to their volume
(:data:`RESIDUAL_VOLUME`). The means are kept directly rather than as
factors of one level: for a quiet cohort with many empty windows a
multiplicative level × factor model swings wildly, the means
do not. Significance is the Poisson tail probability of the observed count
given the expected one, not a z-score: 3 complaints where 0.5 were expected
is unusual, 3 where 2 were expected is not, and a z-score on such small
counts gets both wrong. A spike needs ``p ≤ alpha``, at least ``min_count``
complaints and ``min_ratio`` × the expectation (the low-volume guard), after
``warmup`` windows.

The negative binomial's dispersion is learnt per cohort (how much more its
counts vary around the baseline than Poisson would), with the rule's
``dispersion`` as a floor: one fixed φ either drowns a busy product's 2.5×
surge in allowed variance or lets a badly fitted cohort cry wolf. The same φ
enters the sustained-rise CUSUM (:class:`Cusum`): real counts (NAB's tweet
series, ``bench/nab_tweets.py``) vary with a φ of 0.2 to 0.5, and a Poisson
CUSUM read their ordinary doublings as hours of evidence.

Why not river: measured (``bench/river_detectors.py``, docs/detection-quality.md),
its seasonal anomaly detection (``PredictiveAnomalyDetection`` over
``HoltWinters``, seasonality 24) on the same cohorts, scenarios and guards
either cries wolf (recall 0.93 at 18 false alarms a week) or misses half the
incidents (0.53 at 0.66 a week), where this baseline finds all at none: a
squared-error threshold knows neither count noise (Poisson, negative binomial)
nor that an incident must not teach the forecast. Its models also keep far
more state per series than the 69 floats here, and 100,000 cohorts must fit
a documented bound (:data:`CohortBaseline.BYTES`). river is no dependency.

>>> b = CohortBaseline.fresh()
>>> for week in range(3):
...     for hour in range(24 * 7):
...         _ = b.update(10.0, hour % 24, hour // 24)
>>> round(b.expected(hour=3, weekday=2), 1)
10.0
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy.special import betainc, pdtrc

__all__ = [
    "CohortBaseline",
    "Cusum",
    "RecentBuckets",
    "Spike",
    "SpikeTest",
    "WeekShape",
    "drill_down",
    "explained_by",
    "log_likelihood_ratio",
]

_SEEN = 0
_HOURS = slice(1, 25)
_BLOCKS = slice(25, 67)  # weekday × 4-hour block
_MISFIT = 67  # exponentially weighted (Pearson residual² − 1): the variance beyond Poisson
_LEVEL = 68  # exponentially weighted expectation, to turn the misfit into a dispersion
_SIZE = 69
#: A rule's week (:class:`WeekShape`): windows seen, the 24 hour means, 168 hour-of-week factors, and the 168
#: hour-of-week mean counts the factors are read from (kept beside them: every expectation reads the factors, and the
#: stored length tells a week of the layout before, without counts, from this one).
_FACTORS = 25
_COUNTS = 25 + 168
_WEEK_COUNTS = slice(_COUNTS, _COUNTS + 168)
_WEEK_SIZE = _COUNTS + 168
#: A mean count of an hour of the week not seen yet.
_UNLEARNT = -1.0
#: Weight of one window in the learnt dispersion (a memory of some two days of hours).
DISPERSION_WEIGHT = 0.02
#: Windows a baseline learns before its misfit teaches the dispersion: a week, every hour of every weekday seen
#: once. Before that, the misfit is the baseline's own learning (a steep office-hours shape learnt from its first
#: days): taken as the counts' variance it set φ at its cap of 0.5 by the third day, and at 0.23 still a week on.
DISPERSION_AFTER = 24 * 7


def _learning_weight(times_learnt: int, seasonal_alpha: float) -> float:
    """At least 1/(n+1): a running mean at first, exponential weights once n passes 1/alpha."""
    return max(seasonal_alpha, 1 / (times_learnt + 1))


#: A week factor's deviation δ from its weekday's is kept in the share (δ² − SHRINK_AT · σ²) / δ², σ² its noise:
#: the empirical Bayes estimate from one observation (E δ² = τ² + σ², so the signal's variance is δ² − σ² and its
#: share τ² / (τ² + σ²)). A deviation of one standard error, what noise gives, is dropped; one of three keeps 89 %.
#: Four (a deviation kept only beyond two standard errors) halved a Monday peak seen once at 40 an hour.
SHRINK_AT = 1.0
#: The median of a χ² of one degree of freedom: a median squared difference of N(0, 2σ²) is 2 · 0.455 σ².
_CHI2_1_MEDIAN = 0.4549


def _weighted_median(rows: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Each row's median, its columns weighted (the first value at which half the weight is reached)."""
    order = np.argsort(rows, axis=1)
    cumulative = np.cumsum(weights[order], axis=1)
    at = (cumulative < cumulative[:, -1:] / 2).sum(axis=1)
    return np.take_along_axis(rows, order[np.arange(len(rows)), at][:, None], axis=1)[:, 0]


def _kept(deviation: np.ndarray, noise: float) -> np.ndarray:
    """Each deviation, kept in the share of its square that ``SHRINK_AT`` × its noise variance does not explain."""
    squared = deviation * deviation
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(squared > 0, np.maximum(squared - SHRINK_AT * noise, 0.0) / squared, 1.0) * deviation


@dataclass
class WeekShape:
    """A rule's week, learnt from all its complaints together: 24 hour-of-day means and
    168 hour-of-week factors, read from the 168 hour-of-week mean counts (float32, 1,444 bytes per rule).

    Each cohort's expectation takes its weekly factors from here: the whole rule sees
    some hundred complaints an hour, so one Monday already tells how much busier
    Monday noon is, to within a few per cent. A cohort of two complaints an hour learns
    nothing of the kind from its own Monday, and its own factors, learnt from noise, were
    the largest source of false alarms on small cohorts.

    A factor is a weekday's mean count at that hour over the mean of the weekdays seen at
    that hour, so every weekday is measured against the same level (a weekday not seen yet
    takes 1). It used to be a weekday's count over the hour mean as it stood when that
    weekday was seen. In the first weeks that mean is still learning (from a quiet weekend,
    say), so the days seen first kept factors that were off for weeks: from a Saturday, on
    counts that follow a weekly pattern exactly, Sunday was expected at 1.7 × its count after
    nine days and 1.25 × after a month, and at 500 complaints a day an office intake's Monday
    afternoons at 1.2 to 1.3 × what came (the hours an outage was then judged against).

    A factor is learnt from one count a week, so on a noisy series (a rule of a few
    complaints an hour, or real counts that vary beyond Poisson) it is a mean of a few
    noisy samples: on five weeks of a flat series of φ 0.25 the factors ranged from 0.47
    to 1.70, and an hour expected 13.8 where the truth is 40. So :meth:`factor` is shrunk
    towards its weekday's factor (the volume-weighted median of the day's), keeping of each
    deviation only what its estimation noise does not explain (:data:`SHRINK_AT`). The noise
    is read from the factors themselves: a real weekly pattern (a Monday peak, a quiet
    Saturday evening) spans several hours, and the difference of two neighbouring hours'
    deviations is mostly noise; their median gives its variance, robust to a pattern's edges.

    >>> w = WeekShape.fresh()
    >>> for hour in range(24 * 7 * 3):
    ...     _ = w.update(20.0 if hour % 24 == 12 and hour // 24 % 7 == 0 else 10.0, hour % 24, hour // 24 % 7)
    >>> 1.8 < w.factor(12, 0) / w.factor(12, 3) < 2.1, round(w.factor(11, 0), 1)  # Monday noon: twice as busy
    (True, 1.0)
    """

    state: np.ndarray
    #: The sum of the 24 hour-of-day means, as float32 summed it (every cohort's shrinkage reads it; update clears it).
    _hours_total: float | None = field(default=None, repr=False, compare=False)
    #: The 168 shrunk factors (7 weekdays × 24 hours), computed on the first read after an update.
    _shrunk: np.ndarray | None = field(default=None, repr=False, compare=False)

    BYTES = (1 + 24 + 168 + 168) * 4

    @classmethod
    def fresh(cls) -> WeekShape:
        state = np.ones(_WEEK_SIZE, dtype=np.float32)
        state[_SEEN] = 0.0
        state[_HOURS] = 0.0
        state[_WEEK_COUNTS] = _UNLEARNT
        return cls(state)

    @classmethod
    def from_bytes(cls, data: bytes) -> WeekShape:
        """A week as stored, as a writable copy. One stored before the week kept its counts (factors only) gets
        them as its factors gave them, hour mean × factor: it goes on predicting what it did."""
        state = np.frombuffer(data, dtype=np.float32)
        if len(state) == _WEEK_SIZE:
            return cls(state.copy())
        week = cls.fresh()
        week.state[: len(state)] = state
        week.state[_WEEK_COUNTS] = (state[_FACTORS:].reshape(7, 24) * state[_HOURS][None, :]).ravel()
        return week

    @property
    def windows_seen(self) -> int:
        return int(self.state[_SEEN])

    @property
    def hours(self) -> np.ndarray:
        return self.state[_HOURS]

    @property
    def hours_total(self) -> float:
        if self._hours_total is None:
            self._hours_total = float(self.state[_HOURS].sum())
        return self._hours_total

    def raw_factor(self, hour: int, weekday: int) -> float:
        """The hour-of-week factor as learnt, before shrinkage."""
        return float(self.state[_FACTORS + weekday * 24 + hour])

    def factor(self, hour: int, weekday: int) -> float:
        """The hour-of-week factor a cohort's expectation takes: the learnt one, less what is noise."""
        if self._shrunk is None:
            self._shrunk = self._shrink()
        return float(self._shrunk[weekday * 24 + hour])

    def expected(self, hour: int, weekday: int) -> float:
        return float(self.state[1 + hour]) * self.factor(hour, weekday)

    def knows(self, hour: int, weekday: int) -> bool:
        """Whether this hour of the week has been learnt (else its factor is 1, the weekdays' mean)."""
        return bool(self.state[_COUNTS + weekday * 24 + hour] != _UNLEARNT)

    def _shrink(self) -> np.ndarray:
        """The 168 factors, each deviation from its weekday's factor kept in the share its noise does not explain."""
        raw = self.state[_FACTORS:_COUNTS].astype(np.float64).reshape(7, 24)
        hours = np.maximum(self.state[_HOURS].astype(np.float64), 0.0)
        if self.windows_seen < 24 or hours.sum() <= 0:  # nothing learnt yet
            return raw.ravel()
        day = _weighted_median(raw, hours)  # each weekday's factor: its hours together, by volume, robust to a peak
        deviation = raw - day[:, None]
        neighbours = np.diff(deviation, axis=1) ** 2  # 7 × 23 squared differences of adjacent hours, each ≈ 2σ²
        noise = float(np.median(neighbours)) / (2 * _CHI2_1_MEDIAN)
        return (day[:, None] + _kept(deviation, noise)).ravel()

    def update(self, count: float, hour: int, weekday: int, seasonal_alpha: float = 0.1) -> float:
        """Learn one window of the whole rule; returns what was expected before learning."""
        s = self.state
        expected = self.expected(hour, weekday)
        self._hours_total = self._shrunk = None
        seen = int(s[_SEEN])
        index = _FACTORS + weekday * 24 + hour
        s[1 + hour] += _learning_weight(seen // 24, seasonal_alpha) * (count / s[index] - s[1 + hour])
        # This hour of the week's own mean count, and from those of this hour on the weekdays learnt, the factors.
        # A factor is a weekday's count over the others' at the same hour, not over the hour mean as it stood when
        # the weekday was seen: in the first week that mean is still learning (from a quiet weekend, say), and a
        # Monday measured against it stayed 15-30 % too busy for weeks (its afternoons expected 1.3 x what came).
        mean_at = _COUNTS + weekday * 24 + hour
        if s[mean_at] == _UNLEARNT:
            s[mean_at] = count
        else:  # times this hour of the week was learnt before: the weeks seen
            s[mean_at] += _learning_weight(seen // (24 * 7), seasonal_alpha) * (count - s[mean_at])
        counts = s[_COUNTS + hour :: 24]  # this hour on each weekday
        learnt = counts != _UNLEARNT
        if learnt.sum() >= 2 and (level := float(counts[learnt].mean())) > 0:  # factors average to 1; an unseen weekday takes 1
            s[_FACTORS + hour : _COUNTS : 24] = np.clip(np.where(learnt, counts / level, 1.0), 0.2, 5)
        s[_SEEN] += 1
        return expected


#: A small cohort's hour-of-day mean is shrunk towards its share of the rule's: the rule's shape is worth
#: this many complaints of evidence (a gamma prior), so a cohort of 0.5 complaints an hour, whose own means
#: rest on a handful of complaints each, leans on it, and a busy cohort keeps its own shape.
PRIOR_COMPLAINTS = 10.0
#: A cohort learns its own weekday × block factor (beyond the rule's week) fully only from windows with
#: this many complaints expected; quieter windows teach it in proportion.
RESIDUAL_VOLUME = 30.0


@dataclass
class CohortBaseline:
    """One cohort's learnt state, one float32 array of 69 values (276 bytes).

    With a :class:`WeekShape` (the rule's), the expectation is the cohort's hour-of-day mean,
    shrunk towards its share of the rule's when it has little evidence of its own, × the rule's
    hour-of-week factor × the cohort's own weekday × 4-hour-block factor, which only busy
    cohorts learn away from 1. Without one, the block factors alone carry the week."""

    state: np.ndarray
    #: The sum of the cohort's 24 hour means, as float32 summed it (read by every expectation; update clears it).
    _hours_total: float | None = field(default=None, repr=False, compare=False)

    BYTES = _SIZE * 4

    @classmethod
    def from_bytes(cls, data: bytes) -> CohortBaseline:
        """A baseline as stored (:meth:`numpy.ndarray.tobytes` of its state), as a writable copy."""
        return cls(np.frombuffer(data, dtype=np.float32).copy())

    @classmethod
    def fresh(cls) -> CohortBaseline:
        state = np.ones(_SIZE, dtype=np.float32)
        state[_HOURS] = 0.0
        state[_SEEN] = 0.0
        state[_MISFIT] = state[_LEVEL] = 0.0
        return cls(state)

    @property
    def windows_seen(self) -> int:
        return int(self.state[_SEEN])

    def hour_mean(self, hour: int, week: WeekShape | None = None) -> float:
        """The cohort's mean for this hour of the day, shrunk towards its share of the rule's (gamma-Poisson)."""
        own = float(self.state[1 + hour])
        if week is None:
            return own
        total = week.hours_total
        if total <= 0:
            return own
        if self._hours_total is None:
            self._hours_total = float(self.state[_HOURS].sum())
        prior = self._hours_total / total * float(week.state[1 + hour])
        if prior <= 0:
            return own
        days = min(self.windows_seen // 24, 19)  # the effective sample size of weights of 0.1
        strength = min(PRIOR_COMPLAINTS / prior, 20.0)  # the prior, in days of evidence
        return (days * own + strength * prior) / (days + strength)

    def expected(self, hour: int, weekday: int, week: WeekShape | None = None) -> float:
        s = self.state
        seasonal = week.factor(hour, weekday) if week is not None else 1.0
        return self.hour_mean(hour, week) * seasonal * float(s[_BLOCKS][weekday * 6 + hour // 4])

    def learn_fit(self, count: float, expected: float) -> None:
        """Learn how far one window's count fell from what was expected of it: the dispersion's evidence, once
        the baseline has learnt a week (:data:`DISPERSION_AFTER`). A caller that judges spans reaching back over
        several windows teaches a window only once it has left them all (an incident's first, not yet
        significant hour must not widen the tail its next hours are judged by), and not if it was an outlier.

        >>> b = CohortBaseline.fresh(); b.state[_SEEN] = DISPERSION_AFTER
        >>> b.learn_fit(14.0, 10.0); round(b.dispersion(0.0), 4)  # one window: 2 % of the way from Poisson
        0.0012
        >>> for _ in range(300):
        ...     b.learn_fit(14.0, 10.0)  # 4 above 10 every time: (16 / 10 − 1) / 10 = 0.06
        >>> round(b.dispersion(0.0), 2)
        0.06
        """
        s = self.state
        if s[_SEEN] < DISPERSION_AFTER or expected <= 0:
            return
        if s[_LEVEL] <= 0:
            # The first window starts from Poisson (no misfit) at the cohort's mean level, as if its memory's
            # windows had fitted: one window then moves φ by its weight, not to its own ratio. Started from zero, a
            # night hour of 0.1 expected with one complaint set φ at its cap of 0.5 for the next day (500 a day,
            # channel_silence seed 8: the APP channel's silence check was then due three days on).
            s[_LEVEL] = max(float(s[_HOURS].mean()), expected)
        # at most 3σ of the variance the cohort has shown so far: an incident must not teach it, and a cohort whose
        # counts vary far beyond Poisson can still show that it does
        phi = self.dispersion(0.0)
        misfit = min((count - expected) ** 2, 9.0 * (expected + phi * expected * expected)) / expected - 1.0
        s[_MISFIT] += DISPERSION_WEIGHT * (misfit - s[_MISFIT])
        s[_LEVEL] += DISPERSION_WEIGHT * (expected - s[_LEVEL])

    def dispersion(self, floor: float) -> float:
        """The negative binomial's φ this cohort has shown (variance μ + φμ²), at least ``floor``.

        Learnt as E[(x − μ)²/μ − 1] / E[μ] over recent windows: how much more its counts vary
        around the baseline than Poisson. A large cohort the baseline fits well gets a small φ
        (a 2.5× surge of a busy product is plain), a cohort it fits badly a large one. Each
        window's (x − μ)² counts at most 9 × the variance shown so far (3σ: an incident's window
        teaches no more than an unusual ordinary one, and windows judged spikes teach nothing),
        and only once the baseline has learnt a week (:data:`DISPERSION_AFTER`)."""
        s = self.state
        if s[_LEVEL] <= 0:
            return floor
        return float(min(0.5, max(floor, s[_MISFIT] / s[_LEVEL])))

    def update(
        self,
        count: float,
        hour: int,
        weekday: int,
        seasonal_alpha: float = 0.1,
        outlier: bool = False,
        week: WeekShape | None = None,
        volume: float | None = None,
        fit: bool = True,
    ) -> float:
        """Learn from one window's count; returns what was expected before learning.

        An ``outlier`` (a window judged a spike, its count already clipped by the caller)
        still moves the means, but does not teach the dispersion: an incident must not
        make the next one look ordinary. ``volume``: the complaints the window was expected
        to hold (the cohort's own block factors learn in proportion, up to
        :data:`RESIDUAL_VOLUME`); None learns them fully. ``fit=False`` leaves the dispersion to
        a later :meth:`learn_fit` of the same window."""
        s = self.state
        expected = self.expected(hour, weekday, week)
        self._hours_total = None
        if fit and not outlier:
            self.learn_fit(count, expected)
        hours, blocks = s[_HOURS], s[_BLOCKS]
        block = weekday * 6 + hour // 4
        seasonal = week.factor(hour, weekday) if week is not None else 1.0
        seen = int(s[_SEEN])
        hours[hour] += _learning_weight(seen // 24, seasonal_alpha) * (count / (seasonal * blocks[block]) - hours[hour])
        base = self.hour_mean(hour, week) * seasonal
        # once a day of hours is known, on hours with volume, and, with the rule's week, on an hour of the week it knows:
        # a cohort's own factor is what is left beyond the week's, and learnt against a week that had not seen the
        # weekday yet (a quiet first Sunday against a factor of 1), it went on halving that Sunday once the week knew it
        if seen >= 24 and base >= (0.05 if week is not None else 0.5) and (week is None or week.knows(hour, weekday)):
            block_weight = _learning_weight(seen // (24 * 7), seasonal_alpha) / 4  # four hours a block
            if volume is not None:
                block_weight *= min(1.0, volume / RESIDUAL_VOLUME)
            blocks[block] += block_weight * (count / base - blocks[block])
            blocks[:] = np.clip(blocks * (42 / blocks.sum()), 0.2, 5)  # factors average to 1
        s[_SEEN] += 1
        return expected


@dataclass(frozen=True)
class Spike:
    """A window whose count the baseline makes improbable."""

    observed: int
    expected: float
    p_value: float

    @property
    def ratio(self) -> float:
        return self.observed / self.expected if self.expected > 0 else float("inf")


@dataclass(frozen=True)
class SpikeTest:
    """When a count is a spike: the count model's tail and the low-volume guard.

    ``dispersion`` φ > 0 takes the negative binomial with variance μ + φμ² instead of
    the Poisson's μ: real complaint counts vary more than Poisson (a busy Monday
    morning that the weekday factor only partly learnt, a baseline estimated from
    a few weeks), and with thousands of cohort-windows tested a day, the Poisson
    tail alone turns that extra variance into false alarms on large cohorts.
    """

    alpha: float = 1e-4
    min_count: int = 5
    min_ratio: float = 2.0
    warmup: int = 24 * 7
    dispersion: float = 0.0

    def __call__(self, observed: int, expected: float, windows_seen: int, dispersion: float | None = None) -> Spike | None:
        """``dispersion``: this cohort's φ (:meth:`CohortBaseline.dispersion`), else the test's own."""
        if windows_seen < self.warmup or observed < self.min_count:
            return None
        if observed < self.min_ratio * max(expected, 0.1):
            return None
        p = self.tail(observed, expected, dispersion)
        return Spike(observed, expected, p) if p <= self.alpha else None

    def tail(self, observed: int, expected: float, dispersion: float | None = None) -> float:
        """P(X ≥ observed) under the count model, whatever the guards say (for scores)."""
        if observed <= 0:
            return 1.0
        mean = max(expected, 0.1)  # an empty history still expects a little
        phi = self.dispersion if dispersion is None else dispersion
        # The special functions behind scipy.stats' nbinom.sf and poisson.sf, called directly: the same values
        # (Poisson to the bit, the negative binomial's regularised beta to 1e-12), without the distribution
        # objects' argument handling (80 µs a call, 2 µs here).
        if phi > 0:
            n = 1.0 / phi
            return float(betainc(observed, n, mean / (n + mean)))  # negative binomial, variance μ + φμ²
        return float(pdtrc(observed - 1, mean))


def log_likelihood_ratio(observed: float, expected: float, ratio: float, dispersion: float = 0.0) -> float:
    """ln P(``observed`` | ``ratio`` × ``expected``) − ln P(``observed`` | ``expected``) under the count model: how
    much better a rise to ``ratio`` × the expectation explains a count than the expectation itself (the
    :class:`Cusum`'s step, and the drill-down's test of what is left of a cohort without its child). The
    Poisson's ``x·ln r − (r − 1)·μ``; with dispersion φ the negative binomial's, size n = 1/φ.

    >>> round(log_likelihood_ratio(12, 5.65, 20.9 / 5.65), 3)  # 12 where 5.65 were due: nearer 20.9
    0.447
    """
    if dispersion > 0:
        size = 1.0 / dispersion
        log_ratio = math.log((size + expected) / (size + ratio * expected))
        return observed * (math.log(ratio) + log_ratio) + size * log_ratio
    return observed * math.log(ratio) - (ratio - 1.0) * expected


def drill_down(parent: tuple[int, float], children: dict[str, tuple[int, float]], share: float = 0.8) -> list[tuple[str, float]]:
    """The few child cohorts that explain most of a parent's change (contribution to the change, as in ThirdEye).

    ``parent`` and each child are ``(observed, expected)``. Children are taken by their
    contribution ``(observed − expected) / (parent observed − parent expected)``, largest
    first, until they explain ``share`` of the change.

    >>> drill_down((60, 20.0), {"宽带": (45, 8.0), "IPTV": (8, 6.0), "固话": (7, 6.0)})
    [('宽带', 0.925)]
    """
    change = parent[0] - parent[1]
    if change <= 0:
        return []
    ranked = sorted(((name, (obs - exp) / change) for name, (obs, exp) in children.items()), key=lambda c: -c[1])
    out: list[tuple[str, float]] = []
    explained = 0.0
    for name, contribution in ranked:
        if contribution <= 0 or explained >= share:
            break
        out.append((name, round(contribution, 3)))
        explained += contribution
    return out


@dataclass
class RecentBuckets:
    """A cohort's last buckets, newest first: (numerator, denominator, expected) each, float32.

    The expectation is kept as it was when the bucket closed, before the baseline
    learnt from it: a span that reaches back into an incident's first hour is judged
    against what was expected then, not against a baseline the incident has lifted.

    >>> r = RecentBuckets.empty(4)
    >>> r.push(3, 0, 1.0); r.push(5, 0, 1.5)
    >>> r.total(2)
    (8.0, 0.0, 2.5)
    """

    rows: np.ndarray
    #: Running totals of the rows, newest first, in float64 (computed when first asked after a push).
    _cumulative: list[tuple[float, float, float]] | None = field(default=None, repr=False, compare=False)

    @classmethod
    def empty(cls, n: int) -> RecentBuckets:
        return cls(np.zeros((n, 3), dtype=np.float32))

    @classmethod
    def from_bytes(cls, data: bytes, n: int) -> RecentBuckets:
        if len(data) != 3 * n * 4:
            return cls.empty(n)  # stored for another step or span: start afresh
        return cls(np.frombuffer(data, dtype=np.float32).reshape(n, 3).copy())

    def push(self, numerator: float, denominator: float, expected: float) -> None:
        self.rows[1:] = self.rows[:-1]
        self.rows[0] = (numerator, denominator, expected)
        self._cumulative = None

    def total(self, n: int) -> tuple[float, float, float]:
        """Numerator, denominator and expectation summed over the newest ``n`` buckets.

        A detector asks for several spans after each push; the running totals are computed once for all
        (float32 values summed in float64: exact, whatever the order, for the counts and expectations kept here).
        """
        cumulative = self._cumulative
        if cumulative is None:  # summed in Python floats (float64), in order: what np.cumsum gave, without its call
            numerator = denominator = expected = 0.0
            cumulative = self._cumulative = []
            for row_numerator, row_denominator, row_expected in self.rows.tolist():
                numerator, denominator, expected = numerator + row_numerator, denominator + row_denominator, expected + row_expected
                cumulative.append((numerator, denominator, expected))
        return cumulative[min(n, len(cumulative)) - 1] if n > 0 else (0.0, 0.0, 0.0)

    def tobytes(self) -> bytes:
        return self.rows.tobytes()


def explained_by(cohort: tuple[int, float], overlap: int, other_share: float, test: SpikeTest) -> bool:
    """Whether a cohort's spike is the overlap with another incident's cohort (a different dimension).

    A plan charged twice lifts every region's hotline too: ``region=宁波,channel=10000热线``
    spikes, but without its complaints about that plan (``overlap``) it would not. The
    expectation without them is the cohort's, less the other cohort's ordinary share of
    it (``other_share``, taken as its share overall).

    >>> explained_by((47, 12.7), overlap=33, other_share=0.35, test=SpikeTest(alpha=1e-6))
    True
    >>> explained_by((47, 12.7), overlap=5, other_share=0.35, test=SpikeTest(alpha=1e-6))
    False
    """
    observed, expected = cohort
    rest = observed - overlap
    return test(int(rest), expected * max(0.0, 1.0 - other_share), test.warmup) is None


@dataclass
class Cusum:
    """A count CUSUM of one cohort: evidence for a sustained rise to ``ratio`` × the baseline.

    Each step adds its log-likelihood ratio and the sum never goes below zero (Page, 1954).
    A small cohort's campaign (×3 on four complaints an hour) is never significant in any
    one span, but piles up here hour after hour. The sum being a likelihood ratio, it passes
    ``−ln alpha`` with probability at most ``alpha`` per run of a cohort behaving as its
    baseline says (Wald) — as long as the ratio is that of the count model the cohort
    follows. The Poisson's ``x·ln r − (r − 1)·μ`` is the limit; with the cohort's
    ``dispersion`` φ it is the negative binomial's (variance μ + φμ², size n = 1/φ)::

        x·ln(r(n + μ) / (n + rμ)) + n·ln((n + μ) / (n + rμ))

    On real counts that vary far beyond Poisson (a cohort's φ of 0.2: tweets about one
    brand, NAB's ``realTweets``) the Poisson ratio made every ordinary doubling hours of
    evidence: eleven false alarms a week on one series. ``observed``, ``expected`` and ``steps``
    add up the steps since the sum last left zero: the span its evidence covers, for the
    low-volume guard and for the alert, which states that span's count and expectation.

    >>> c = Cusum()
    >>> for _ in range(8):
    ...     c.step(3.0, 1.0, ratio=2.0)
    >>> round(c.score, 2), c.observed, c.expected, c.steps
    (8.64, 24.0, 8.0, 8)
    >>> c.step(0.0, 10.0, ratio=2.0); c.score, c.observed, c.steps
    (0.0, 0.0, 0)
    >>> wide = Cusum()  # the same steps from a cohort whose counts vary as a negative binomial of φ 0.2
    >>> for _ in range(8):
    ...     wide.step(3.0, 1.0, ratio=2.0, dispersion=0.2)
    >>> round(wide.score, 2)
    6.77
    """

    score: float = 0.0
    observed: float = 0.0
    expected: float = 0.0
    #: Steps since the sum last left zero (0 also when stored by a version that did not count them).
    steps: int = 0

    def step(self, observed: float, expected: float, ratio: float, dispersion: float = 0.0) -> None:
        score = self.score + log_likelihood_ratio(observed, expected, ratio, dispersion)
        if score <= 0:
            self.score = self.observed = self.expected = 0.0
            self.steps = 0
            return
        self.score, self.observed, self.expected = score, self.observed + observed, self.expected + expected
        self.steps += 1

    def as_list(self) -> list[float]:
        return [round(self.score, 4), self.observed, round(self.expected, 4), self.steps]

    @classmethod
    def from_list(cls, stored: list[float]) -> Cusum:
        """Read :meth:`as_list` back (three values: stored before the steps were counted)."""
        if len(stored) == 4:
            return cls(stored[0], stored[1], stored[2], int(stored[3]))
        if len(stored) == 3:
            return cls(*stored)
        return cls()
