"""How far the spike rule's expectations are from the simulator's true rate, per hour of the judged Monday.

The grid's incidents start on a Monday (``yujing eval``), after nine days of history
from a Saturday. This runs the pack's ``complaint-spike`` rule over the history of
the ``benign`` scenario up to that Monday, then asks it what it expects of every
single-dimension cohort (a region, a product, a channel, a tier) at each quarter hour
of the Monday, and divides by what the simulator draws them from
(:class:`streams.simulator.scenarios.Background`). A ratio above 1 hides an incident
of that size; below 1, a benign hour looks like one.

    .venv/bin/python bench/expectation_bias.py --shapes city,office --volume 500 --seeds 3 --out /tmp/after.json
    .venv/bin/python bench/expectation_bias.py --plot docs/expectation-bias.png /tmp/before.json /tmp/after.json

Prints the median ratio per shape and hour; ``--out`` keeps them as JSON and
``--plot`` draws saved runs side by side (one line per file and shape).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import statistics
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from detectors.baseline import CohortBaseline  # noqa: E402
from rules.loader import load_rules  # noqa: E402
from rules.types.cohort_incidents import parse_cohort  # noqa: E402
from rules.types.cohort_spike import Baseline, CohortSpikeRule  # noqa: E402
from streams.backtest import Collect  # noqa: E402
from streams.config import default_rules_dir  # noqa: E402
from streams.engine import DictBackend, Engine, EngineConfig  # noqa: E402
from streams.evaluate import Cell, scenario_config  # noqa: E402
from streams.local import LocalRunner  # noqa: E402
from streams.simulator.scenarios import Background, scenario  # noqa: E402

STEP = 900.0
#: Steps whose true expectation is below this are left out (their ratio is noise).
LEAST = 0.2


def monday_ratios(shape: str, volume: float, seed: int) -> dict[int, list[float]]:
    """Expectation / truth per local hour of the judged Monday, over the single-dimension cohorts."""
    cfg = scenario_config("benign", seed, volume, Cell(volume, shape=shape))
    sim, background = scenario(cfg), Background.of(cfg)
    monday = cfg.start.timestamp()
    (rule,) = [r for r in load_rules(default_rules_dir()).rules if r.rule_id == "complaint-spike"]
    assert isinstance(rule, CohortSpikeRule)
    engine = Engine([rule], DictBackend(), EngineConfig(allowed_lateness=300.0, idle_after=None))  # as `yujing eval`
    history = dataclasses.replace(sim, events=[e for e in sim.events if dt.datetime.fromisoformat(e["ts"]).timestamp() < monday])
    LocalRunner.replaying(engine, [Collect()]).run(history.lines())
    week = rule._week(engine)
    out: dict[int, list[float]] = defaultdict(list)
    local = cfg.start.tzinfo
    for cohort, stored in engine.backend.namespace(f"spike-b:{rule.ns}", Baseline).items():
        labels = dict(parse_cohort(cohort))
        if len(labels) != 1:
            continue
        baseline = CohortBaseline.from_bytes(stored.values)
        for k in range(96):
            step = monday + k * STEP
            true = background.expected(labels, step, step + STEP)
            if true >= LEAST:
                out[dt.datetime.fromtimestamp(step, local).hour].append(rule._expected(baseline, week, step, 0.0) / true)
    return out


def plot(path: str, runs: list[str]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    loaded = {Path(f).stem: json.loads(Path(f).read_text()) for f in runs}
    shapes = sorted({shape for run in loaded.values() for shape in run["medians"]})
    columns = min(2, len(shapes))
    rows = -(-len(shapes) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(6 * columns, 3.4 * rows), sharey=True, squeeze=False)
    for ax in axes.ravel()[len(shapes) :]:
        ax.set_visible(False)
    for ax, shape in zip(axes.ravel(), shapes, strict=False):
        for name, run in loaded.items():
            medians = run["medians"].get(shape, {})
            hours = sorted(int(h) for h in medians)
            ax.plot(hours, [medians[str(h)] for h in hours], marker="o", ms=3, label=name)
        ax.axhline(1.0, color="grey", lw=0.8)
        ax.set_title(f"{shape}, {next(iter(loaded.values()))['volume']:g} a day: the Monday")
        ax.set_xlabel("local hour")
    for row in axes:
        row[0].set_ylabel("expected / true (median)")
    axes[0][0].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    print(f"wrote {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shapes", default="city,office", help="seasonal shapes of the background, comma-separated")
    parser.add_argument("--volume", type=float, default=500.0, help="complaints a day")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--out", help="save the medians per shape and hour as JSON")
    parser.add_argument("--plot", help="draw the JSON files given as arguments into this PNG")
    parser.add_argument("runs", nargs="*", help="JSON files of earlier runs (with --plot)")
    args = parser.parse_args()
    if args.plot:
        plot(args.plot, args.runs)
        return
    medians: dict[str, dict[int, float]] = {}
    for shape in args.shapes.split(","):
        ratios: dict[int, list[float]] = defaultdict(list)
        for seed in range(1, args.seeds + 1):
            for hour, values in monday_ratios(shape, args.volume, seed).items():
                ratios[hour].extend(values)
        medians[shape] = {h: round(statistics.median(v), 3) for h, v in sorted(ratios.items())}
        print(f"{shape}, {args.volume:g} a day, {args.seeds} seeds: median expected / true per local hour of the Monday")
        print("  " + "  ".join(f"{h:02d}h {m:.2f}" for h, m in medians[shape].items()), flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps({"volume": args.volume, "seeds": args.seeds, "medians": medians}, indent=1))


if __name__ == "__main__":
    main()
