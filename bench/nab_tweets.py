"""The spike rule on real count series it was never tuned on: NAB's ``realTweets``, replayed as complaints.

    git clone --depth 1 https://github.com/numenta/NAB /tmp/NAB      # the Numenta Anomaly Benchmark (MIT)
    .venv/bin/python bench/nab_tweets.py --nab /tmp/NAB [--rules rules/packs/default] [--workers 2] [--plot nab.png]

NAB's ``realTweets`` are ten series of tweets a five minutes mentioning one company (AAPL, KO, …),
two months each, from about 100 a day (CVS) to 25,000 (AAPL), with 33 labelled anomaly windows.
Each series is replayed as complaints of one cohort (``product=<ticker>``), each five minutes'
count spread evenly over its five minutes, through the engine with the pack's ``cohort_spike``
rules only (``complaint-spike``), one series per engine. Unlike the simulator, these counts vary
far beyond Poisson: a brand's hour doubles a dozen times a week and nobody labelled it.

For each series, and over all: the windows with an alert raised inside (NAB counts one detection
per window), the alerts raised outside every window (per week), and NAB's standard-profile score,
reimplemented here (true positive 1 scaled by a sigmoid of how early in its window, false positive
−0.11 scaled by its distance after the previous window, missed window −1; normalised so that
raising nothing scores 0 and one alert at each window's start scores 100). The alerts are binary, so
there is no threshold to sweep, as NAB would for a detector's scores.

The reference, in the same run: an EWMA z-score of each series' quarter-hour counts (mean and
variance exponentially weighted with ``alpha``, flag when z > ``k`` after a week, one alert per run of
flagged steps), at several settings: the "naive detector" of issue 18.
"""

from __future__ import annotations

import argparse
import bisect
import csv
import datetime as dt
import json
import math
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

STEP = 300.0  # NAB's realTweets: one count every five minutes
WEEK = 7 * 86400.0


@dataclass(frozen=True)
class Series:
    """One NAB series: its name, sample times (epoch seconds), counts and labelled windows."""

    name: str
    times: list[float]
    counts: list[int]
    windows: list[tuple[float, float]]

    @property
    def weeks(self) -> float:
        return (self.times[-1] - self.times[0]) / WEEK


def _epoch(text: str) -> float:
    return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC).timestamp()


def load_series(nab: Path) -> list[Series]:
    """Every ``data/realTweets`` series of a NAB checkout, with its windows from ``labels/combined_windows.json``."""
    windows = json.loads((nab / "labels" / "combined_windows.json").read_text())
    out = []
    for path in sorted((nab / "data" / "realTweets").glob("*.csv")):
        rows = list(csv.DictReader(path.open()))
        spans = [(_epoch(a), _epoch(b)) for a, b in windows[f"realTweets/{path.name}"]]
        out.append(Series(path.stem.rsplit("_", 1)[-1], [_epoch(r["timestamp"]) for r in rows], [int(r["value"]) for r in rows], spans))
    if not out:
        sys.exit(f"no series under {nab / 'data' / 'realTweets'}: is --nab a NAB checkout?")
    return out


def complaint_lines(series: Series) -> Iterator[bytes]:
    """The series as complaint events (the contract's ``complaint.opened``), each count spread over its five minutes."""
    n = 0
    for start, count in zip(series.times, series.counts, strict=True):
        for i in range(count):
            n += 1
            ts = dt.datetime.fromtimestamp(start + STEP * (i + 0.5) / count, dt.UTC).isoformat().replace("+00:00", "Z")
            yield (
                f'{{"event_id":"{series.name}-{n}","event_type":"complaint.opened","ts":"{ts}","customer_id":"c{n % 100000}",'
                f'"complaint_id":"{series.name}-{n}","product":"{series.name}","text":"tweet"}}'
            ).encode()


def yujing_alerts(series: Series, rules_dir: str) -> list[float]:
    """When the pack's cohort-spike rules raised each alert on the series (its ``starts_at``), sorted."""
    from rules import load_rules
    from streams.backtest import Collect
    from streams.engine import DictBackend, Engine, EngineConfig
    from streams.local import LocalRunner

    rules = [r for r in load_rules(rules_dir).rules if type(r).__name__ == "CohortSpikeRule"]
    collect = Collect()
    LocalRunner.replaying(Engine(rules, DictBackend(), EngineConfig(idle_after=None)), [collect]).run(complaint_lines(series), close=True)
    return sorted({a.starts_at.timestamp() for a in collect.alerts if a.status == "firing"})


def ewma_alerts(series: Series, k: float, alpha: float, steps: int = 3) -> list[float]:
    """The naive reference: z-score of each quarter hour against exponentially weighted mean and variance."""
    mean = variance = None
    out, flagged_before, seen = [], False, 0
    warmup = WEEK / (STEP * steps)
    for i in range(0, len(series.counts) - steps + 1, steps):
        x = float(sum(series.counts[i : i + steps]))
        if mean is None or variance is None:
            mean, variance = x, max(x, 1.0)
            continue
        seen += 1
        flagged = seen > warmup and (x - mean) / math.sqrt(max(variance, 1e-9)) > k
        if flagged and not flagged_before:
            out.append(series.times[i + steps - 1] + STEP)
        flagged_before = flagged
        change = x - mean
        mean += alpha * change
        variance = (1 - alpha) * (variance + alpha * change * change)
    return out


def _sigmoid(position: float) -> float:
    """NAB's scaled sigmoid: 1 at a window's start, 0 at its end, towards −1 far after it."""
    return 2 / (1 + math.exp(5 * position)) - 1


def nab_score(series: Series, alerts: list[float], false_positive: float = -0.11, missed: float = -1.0) -> tuple[float, int, int]:
    """NAB's standard profile for one series: (score, windows detected, alerts outside every window)."""
    times = series.times

    def index(t: float) -> int:
        return min(bisect.bisect_left(times, t), len(times) - 1)

    windows = [(index(a), index(b)) for a, b in series.windows]
    score, detected, outside = 0.0, set(), 0
    for t in alerts:
        i = index(t)
        inside = [w for w, (a, b) in enumerate(windows) if a <= i <= b]
        if inside:
            w = inside[0]
            if w not in detected:
                detected.add(w)
                a, b = windows[w]
                score += _sigmoid(-(b - i) / (b - a + 1))
            continue
        outside += 1
        before = [(a, b) for a, b in windows if b < i]
        score += false_positive * (abs(_sigmoid((i - before[-1][1]) / (before[-1][1] - before[-1][0] + 1))) if before else 1.0)
    return score + missed * (len(windows) - len(detected)), len(detected), outside


@dataclass(frozen=True)
class Row:
    """One detector's figures over all series."""

    detector: str
    detected: int
    windows: int
    alerts: int
    outside_per_week: float  #: alerts outside every window, a week per series
    score: float


def summarise(detector: str, series: list[Series], alerts: list[list[float]]) -> Row:
    raw = null = perfect = 0.0
    detected = outside = 0
    for s, found in zip(series, alerts, strict=True):
        score, hits, out = nab_score(s, found)
        raw, detected, outside = raw + score, detected + hits, outside + out
        null += nab_score(s, [])[0]
        perfect += nab_score(s, [a for a, _ in s.windows])[0]
    weeks = sum(s.weeks for s in series)
    windows = sum(len(s.windows) for s in series)
    return Row(detector, detected, windows, sum(map(len, alerts)), outside / weeks, 100 * (raw - null) / (perfect - null))


def plot(series: list[Series], ours: list[list[float]], reference: list[list[float]], reference_name: str, path: Path) -> Path:
    """One panel per series: its hourly counts, the labelled windows shaded, the spike rule's alerts (red) and
    the reference's (grey) as ticks above and below."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(series), 1, figsize=(12, 1.6 * len(series)), sharex=False)
    for ax, s, mine, theirs in zip(axes, series, ours, reference, strict=True):
        hours = [(s.times[i] - s.times[0]) / 86400 for i in range(0, len(s.counts) - 11, 12)]
        counts = [sum(s.counts[i : i + 12]) for i in range(0, len(s.counts) - 11, 12)]
        ax.plot(hours, counts, lw=0.6, color="#335")
        for a, b in s.windows:
            ax.axvspan((a - s.times[0]) / 86400, (b - s.times[0]) / 86400, color="#9c6", alpha=0.35, lw=0)
        top = max(counts) if counts else 1
        ax.plot([(t - s.times[0]) / 86400 for t in mine], [top * 1.08] * len(mine), "|", color="#c22", ms=7)
        ax.plot([(t - s.times[0]) / 86400 for t in theirs], [top * 1.18] * len(theirs), "|", color="#888", ms=7)
        ax.set_ylim(0, top * 1.25)
        ax.set_ylabel(s.name, rotation=0, ha="right", va="center")
        ax.tick_params(labelsize=7)
    title = f"NAB realTweets, complaints an hour: labelled windows (green), complaint-spike alerts (red), {reference_name} (grey)"
    axes[0].set_title(title, fontsize=9)
    axes[-1].set_xlabel("days")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _yujing(args: tuple[Series, str]) -> list[float]:
    return yujing_alerts(*args)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nab", type=Path, required=True, help="a NAB checkout (data/realTweets, labels/combined_windows.json)")
    parser.add_argument("--rules", default=str(ROOT / "rules" / "packs" / "default"), help="rules directory (its cohort_spike rules run)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--plot", type=Path, help="write a PNG of every series with its windows and both detectors' alerts")
    args = parser.parse_args()
    series = load_series(args.nab)
    began = time.monotonic()
    with ProcessPoolExecutor(args.workers) as pool:
        ours = list(pool.map(_yujing, [(s, args.rules) for s in series]))
    took = time.monotonic() - began
    print(f"{len(series)} series, {sum(map(sum, (s.counts for s in series))):,} complaints, replayed in {took:.0f} s\n")
    print(f"{'series':8} {'per day':>8} {'windows':>8} {'alerts':>7} {'outside a week':>15} {'NAB score':>10}")
    for s, found in zip(series, ours, strict=True):
        score, hits, outside = nab_score(s, found)
        per_day = sum(s.counts) / (s.weeks * 7)
        print(f"{s.name:8} {per_day:8,.0f} {hits:>4}/{len(s.windows):<3} {len(found):7} {outside / s.weeks:15.1f} {score:10.2f}")
    rows = [summarise("yujing complaint-spike", series, ours)]
    for alpha in (0.01, 0.05):
        for k in (3.0, 4.0, 5.0, 6.0):
            rows.append(summarise(f"EWMA z > {k:g}, alpha {alpha}", series, [ewma_alerts(s, k, alpha) for s in series]))
    if args.plot:
        k, alpha = 4.0, 0.01  # the EWMA setting whose alert count is nearest the spike rule's on these series
        print(f"plot: {plot(series, ours, [ewma_alerts(s, k, alpha) for s in series], f'EWMA z > {k:g}, alpha {alpha}', args.plot)}")
    print(f"\n{'detector':28} {'windows':>8} {'alerts':>7} {'outside/week/series':>20} {'NAB standard':>13}")
    for row in rows:
        print(f"{row.detector:28} {row.detected:>4}/{row.windows:<3} {row.alerts:7} {row.outside_per_week:20.2f} {row.score:13.1f}")


if __name__ == "__main__":
    main()
