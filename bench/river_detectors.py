"""river's seasonal anomaly detection against Yujing's ``cohort_spike``, on ``yujing eval``'s labelled scenarios.

    .venv/bin/pip install -e '.[bench]'          # river: not a dependency of Yujing itself
    .venv/bin/python bench/river_detectors.py [--seeds 3] [--n-std 3,12,48,192]

The design names river for online anomaly detection. Its fitting tool for cohort counts is
``anomaly.PredictiveAnomalyDetection`` over a seasonal forecaster, ``time_series.HoltWinters``
(seasonality 24 hours): it forecasts each hour and flags an hour whose squared error exceeds the
running mean by ``n_std`` running standard deviations. This script runs it over the same cohorts
as the default pack's ``complaint-spike`` (region, product, channel and their pairs), hour by
hour, with the same guards (a week of warm-up, at least ``min_count`` complaints, a rise, not a
drop), and judges both by the incidents' labels exactly as ``yujing eval`` does ("precision by
labels"): a flag is a true positive when it names the incident's cohort (agreeing on a dimension
and contradicting none) between the incident's start and two hours after its end; consecutive
flagged hours of one cohort are one alert. ``cohort_spike``'s figures come from the engine on the
same simulated events. Prints one table, measured in one run.
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DIMENSIONS = ("region", "product", "channel")
KINDS = ("outage", "billing", "backlog", "app_login", "campaign", "benign")


def hourly_counts(events: list[dict[str, Any]]) -> tuple[list[float], dict[str, dict[float, int]]]:
    """The hours of the run (UTC hour starts) and each cohort's complaints per hour."""
    counts: dict[str, dict[float, int]] = {}
    first = last = None
    for e in events:
        if e["event_type"] != "complaint.opened":
            continue
        ts = dt.datetime.fromisoformat(e["ts"]).timestamp()
        hour = ts - ts % 3600
        first = hour if first is None else min(first, hour)
        last = hour if last is None else max(last, hour)
        labels = [(d, e[d]) for d in DIMENSIONS if e.get(d)]
        for r in (1, 2):
            for combo in itertools.combinations(labels, r):
                key = ",".join(f"{k}={v}" for k, v in combo)
                per = counts.setdefault(key, {})
                per[hour] = per.get(hour, 0) + 1
    assert first is not None and last is not None
    return [first + 3600 * i for i in range(int((last - first) // 3600) + 1)], counts


def river_flags(hours: list[float], counts: dict[str, dict[float, int]], n_std: float, min_count: int) -> list[tuple[str, float]]:
    """(cohort, hour end) of each alert: runs of consecutive flagged hours, one alert each."""
    try:
        from river import anomaly, time_series
    except ImportError:
        sys.exit("river is not installed: pip install -e '.[bench]'")

    warmup = 7 * 24
    out = []
    for cohort, per in counts.items():
        model = anomaly.PredictiveAnomalyDetection(
            time_series.HoltWinters(alpha=0.3, beta=0.01, gamma=0.3, seasonality=24), horizon=1, n_std=n_std, warmup_period=warmup
        )
        flagged_before = False
        for i, hour in enumerate(hours):
            y = float(per.get(hour, 0)) + 1e-3  # HoltWinters divides by its first day's level: never exactly 0
            flagged = False
            if i >= warmup:
                forecast = model.predictive_model.forecast(1)[0]
                flagged = model.score_one(None, y) >= 1.0 and y >= min_count and y > forecast
            if flagged and not flagged_before:
                out.append((cohort, hour + 3600))
            flagged_before = flagged
            model.learn_one(None, y)
    return out


def agrees(cohort: str, incident_labels: dict[str, str]) -> bool:
    labels = dict(part.split("=", 1) for part in cohort.split(","))
    common = set(labels) & set(incident_labels)
    return bool(common) and all(labels[k] == incident_labels[k] for k in common)


def judge(flags: list[tuple[str, float]], incidents: list[Any]) -> tuple[int, int, int, int, list[float]]:
    """true positives, false positives, incidents, detected, time to detect (hours)."""
    tp = fp = 0
    first: dict[int, float] = {}
    for cohort, at in flags:
        hit = False
        for i, inc in enumerate(incidents):
            start, end = dt.datetime.fromisoformat(inc.start).timestamp(), dt.datetime.fromisoformat(inc.end).timestamp()
            if start < at <= end + 2 * 3600 and agrees(cohort, inc.labels):
                hit = True
                first[i] = min(first.get(i, at), at)
        tp += hit
        fp += not hit
    ttd = [(at - dt.datetime.fromisoformat(incidents[i].start).timestamp()) / 3600 for i, at in first.items()]
    return tp, fp, len(incidents), len(first), ttd


def yujing_outcome(sim: Any) -> tuple[int, int, int, int, list[float]]:
    """``complaint-spike`` through the engine on the same events, judged by labels (``yujing eval``'s judge)."""
    from rules import load_rules
    from streams.backtest import Collect
    from streams.config import default_rules_dir
    from streams.engine import DictBackend, Engine, EngineConfig
    from streams.local import LocalRunner

    rules = [r for r in load_rules(default_rules_dir()).rules if r.rule_id == "complaint-spike"]
    collect = Collect()
    LocalRunner.replaying(Engine(rules, DictBackend(), EngineConfig(idle_after=None)), [collect]).run(sim.lines(), close=True)
    firing = {a.alert_id: a for a in collect.alerts if a.status == "firing"}
    flags = [
        (",".join(f"{k}={v}" for k, v in a.labels.items() if k in DIMENSIONS), a.starts_at.timestamp())
        for a in sorted(firing.values(), key=lambda a: a.starts_at)
    ]
    return judge([f for f in flags if f[0]], sim.incidents)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--n-std", default="3,6,12", help="river thresholds to try (comma-separated): the best is river's")
    parser.add_argument("--min-count", type=int, default=8, help="the pack's complaint-spike min_count")
    args = parser.parse_args()
    from streams.simulator.scenarios import ScenarioConfig, scenario

    settings = [float(x) for x in args.n_std.split(",")]
    names = [f"river n_std={n:g}" for n in settings]
    totals: dict[str, list[Any]] = {name: [0, 0, 0, 0, [], 0.0] for name in [*names, "yujing"]}
    benign_fp = dict.fromkeys(totals, 0)
    days = 0.0
    for kind, seed in itertools.product(KINDS, range(1, args.seeds + 1)):
        sim = scenario(ScenarioConfig(kind=kind, seed=seed))
        days += sim.config.days + sim.config.history_days
        hours, counts = hourly_counts(sim.events)
        got = {}
        for name, n_std in zip(names, settings, strict=True):
            started = time.process_time()
            got[name] = judge(river_flags(hours, counts, n_std, args.min_count), sim.incidents)
            totals[name][5] += time.process_time() - started
        started = time.process_time()
        got["yujing"] = yujing_outcome(sim)
        totals["yujing"][5] += time.process_time() - started
        for name, (tp, fp, incidents, detected, ttd) in got.items():
            t = totals[name]
            t[0] += tp
            t[1] += fp
            t[2] += incidents
            t[3] += detected
            t[4].extend(ttd)
            if kind == "benign":
                benign_fp[name] += fp
        shown = "  ".join(f"{name} tp/fp {got[name][:2]}" for name in totals)
        print(f"{kind:10} seed {seed}: {shown}", flush=True)
    print()
    print(f"{len(KINDS)} scenarios × {args.seeds} seeds, {days:.0f} simulated days; river: HoltWinters(24) + PAD")
    # CPU seconds are not compared: river's run over hours counted once by this script, cohort_spike's over the events.
    print(f"{'detector':36} {'alerts':>7} {'precision':>9} {'recall':>7} {'median TTD h':>12} {'false alarms/week':>18}")
    for name, (tp, fp, incidents, detected, ttd, _) in totals.items():
        label = "yujing cohort_spike" if name == "yujing" else f"{name} (PAD+HoltWinters)"
        precision = tp / (tp + fp) if tp + fp else float("nan")
        median = sorted(ttd)[len(ttd) // 2] if ttd else float("nan")
        per_week = (fp / days) * 7
        print(
            f"{label:36} {tp + fp:7d} {precision:9.2f} {detected / incidents:7.2f} {median:12.2f} {per_week:18.2f}"
            f"   (benign runs: {benign_fp[name]} false alarms)"
        )


if __name__ == "__main__":
    main()
