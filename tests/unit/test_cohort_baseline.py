"""Cohort spikes (issue 4, first part): seasonal baseline, Poisson significance with a low-volume guard, drill-down."""

from __future__ import annotations

import math

import numpy as np

from detectors.baseline import CohortBaseline, SpikeTest, drill_down


def daily_shape(hour: int) -> float:
    """Quiet nights, busy mornings and evenings."""
    return 0.2 + 1.8 * max(0.0, math.sin(math.pi * (hour - 6) / 16)) if 6 <= hour <= 22 else 0.2


def train(baseline: CohortBaseline, weeks: int, rng: np.random.Generator, scale: float = 10.0, monday_boost: float = 1.5) -> None:
    for day in range(7 * weeks):
        for hour in range(24):
            mean = scale * daily_shape(hour) * (monday_boost if day % 7 == 0 else 1.0)
            baseline.update(float(rng.poisson(mean)), hour, day % 7)


def test_the_baseline_learns_daily_and_weekly_seasonality() -> None:
    b = CohortBaseline.fresh()
    train(b, 8, np.random.default_rng(1))
    assert b.expected(hour=3, weekday=2) < 4  # night
    assert 14 < b.expected(hour=14, weekday=2) < 26  # afternoon peak, about 10 × 2
    assert b.expected(hour=14, weekday=0) > 1.2 * b.expected(hour=14, weekday=2)  # Monday mornings are busier


def test_ordinary_peaks_do_not_alert_and_a_real_surge_does() -> None:
    b = CohortBaseline.fresh()
    rng = np.random.default_rng(2)
    train(b, 8, rng)
    test = SpikeTest()
    ordinary = [test(int(rng.poisson(10 * daily_shape(h) * 1.5)), b.expected(h, 0), b.windows_seen) for h in range(24)]
    assert not any(ordinary)  # a Monday is busy, and expected to be
    spike = test(80, b.expected(14, 2), b.windows_seen)
    assert spike is not None and spike.ratio > 3 and spike.p_value < 1e-10


def test_low_volume_counts_need_a_count_model_not_a_z_score() -> None:
    test = SpikeTest(warmup=0, min_count=3)
    assert test(3, 2.0, 100) is None  # 3 where 2 were expected is ordinary
    assert test(6, 0.3, 100) is not None  # 6 where 0.3 were expected is not
    assert test(2, 0.01, 100) is None  # too few to call, however improbable
    assert SpikeTest(warmup=50)(50, 1.0, 10) is None  # still warming up


def test_drill_down_names_the_cohorts_that_explain_the_change() -> None:
    region = (120, 40.0)
    products = {"宽带": (95, 12.0), "IPTV": (10, 12.0), "固话": (8, 8.0), "5G套餐": (7, 8.0)}
    assert drill_down(region, products) == [("宽带", 1.038)]
    channels = {"APP": (50, 10.0), "10000热线": (45, 15.0), "微信": (25, 15.0)}
    assert [name for name, _ in drill_down(region, channels)] == ["APP", "10000热线"]
    assert drill_down((10, 12.0), products) == []  # no rise, nothing to explain


def test_a_cohorts_state_is_a_fixed_276_bytes() -> None:
    b = CohortBaseline.fresh()
    train(b, 1, np.random.default_rng(3))
    assert b.state.nbytes == CohortBaseline.BYTES == 276
    assert 100_000 * CohortBaseline.BYTES < 28_000_000  # 100,000 cohorts' baselines fit in 28 MB
