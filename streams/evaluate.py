"""``yujing eval``: detection quality of the detectors on labelled scenarios, over many seeds.

Each run simulates one scenario (:mod:`streams.simulator.scenarios`) and replays
it through the local runner with the detector rules of a rules directory (the
rule types ``cohort_spike``, ``hot_words`` and ``cohort_silence``), exactly as a
backtest would.

Judging, per detector:

* an alert (one per alert id, its firing) is a **true positive** when the run
  has an incident, the alert's window overlaps the incident (from its start
  to two windows after its end), and it is *about* the incident, by the
  simulation's ground truth (which complaints the incident added):

  - a cohort spike whose excess (observed − expected) over the span that
    decided it (the trailing window for the CUSUM's sustained rise) is at
    least half made of the incident's own complaints in that cohort and span;
  - a hot-word topic whose sample complaints are mostly the incident's;
  - a silence naming the silent cohort (the labels agree on a dimension and
    contradict none: a silence has no complaints to count).

  Every other alert, in any scenario, on any day (history included), is a
  **false positive**;
* an incident is **detected** when at least one true positive names it;
  time-to-detect is from the incident's start to the end of the window of
  the first true positive, in windows.

Each outcome also keeps the stricter count of the first version of this
judge (``label_true_positives``): a cohort spike agreeing with the incident's
labelled cohort on a dimension and contradicting none; a hot-word topic with a
term from ``INCIDENT_WORDS``. It misses alerts the incident caused elsewhere (a
broken app login lifts the landline plan's complaints too) and incident words
the list did not foresee (the typo 宽代, 几天 of "等了好几天").

Precision = TP / all alerts; recall = detected / incidents; the median of
time-to-detect over detected incidents.

**Visibility** says which incidents any detector could be asked to find. It is
what an oracle that knew the incident's cohort and span would see: −log10 of
the Poisson probability of the cohort's complaints over exactly that span (all
of them, the incident's and the background's), given the mean count of the
same cohort over the same hours of the seven days before (a silence: of
receiving none). An incident is *visible* at :data:`VISIBLE` (6: a chance of
one in a million, the alpha at which the default pack tests each cohort's
span; a detector, which must look at every cohort and span, needs at least
that). "recall (visible)" is the recall over visible incidents only: a
campaign that adds two complaints to a cohort's usual two over six hours is
no incident a detector can find without crying wolf, at any settings.

**The oracle's time to detect** says how soon the evidence allowed it. The
oracle knows the incident's cohort, its start, and the rate the simulator drew
that cohort's ordinary complaints from (a Monday morning's peak included,
which the week-before mean of *visibility* misses). Every quarter hour from
the start it tests the cohort's complaints since the start, once, at one in a
million (a silence: that none came). Its median over the incidents a detector
found is tabled beside the detector's ("oracle's TTD"). A detector looks at
every cohort and span with a baseline it learnt; it is sooner only where a
narrower cohort than the labelled one carries the incident.

The grid: every scenario × seed at each point of volumes (complaints a day),
seasonal shapes, incident sizes and phrasing banks (see
:mod:`streams.simulator.scenarios`); results are kept and summarised per point.
"""

from __future__ import annotations

import bisect
import dataclasses
import datetime as dt
import math
import statistics
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from detectors.baseline import SpikeTest
from rules.types.cohort_incidents import parse_cohort
from yujing.alerts import Alert

__all__ = ["DETECTORS", "Outcome", "Summary", "Truth", "detector_of", "evaluate", "judge", "run_scenario", "summarise"]

#: The detectors judged, by the rules' ``detector_kind`` (the alert contract's ``source`` has fewer kinds: a silence is a
#: cohort detector's alert, source ``cohort_spike``).
DETECTORS = ("cohort_spike", "hot_word", "cohort_silence")
#: The incidents a detector is meant to find (recall counts these only): a silence has no complaints to spike or
#: to fill with words, and a spike or a burst of words is no silence.
SILENCES = ("channel_silence",)
DIMENSIONS = ("region", "product", "channel", "tier")
#: −log10 of the oracle's tail probability at which an incident counts as visible (see the module docstring).
VISIBLE = 6.0
#: How often the oracle of :meth:`Truth.earliest` looks: the default pack's step.
ORACLE_STEP = 900.0
_POISSON = SpikeTest(dispersion=0.0)  # the oracle's count model: the detectors' tail, without overdispersion


@dataclass
class Outcome:
    """One detector on one scenario run."""

    detector: str
    scenario: str
    seed: int
    volume: float = 2400.0  # complaints a day
    days: float = 0.0  # simulated, history included (false alarms per week)
    shape: str = "city"  # the background's seasonality
    size: float | None = None  # the incident's multiplier (None: the scenario's own)
    phrasings: str = "tuned"  # the incident texts' bank
    delivery: str = "ordered"  # how the events arrived (DELIVERIES)
    true_positives: int = 0
    false_positives: int = 0
    label_true_positives: int = 0  # by the incident's labels and words (the stricter first judge)
    incidents: int = 0
    detected: int = 0
    ttd_windows: list[float] = field(default_factory=list)
    false_alerts: list[str] = field(default_factory=list)  # summaries, to read why
    #: Per incident meant for the detector, in the run's order: its visibility, and whether it was detected.
    visibility: list[float] = field(default_factory=list)
    found: list[bool] = field(default_factory=list)
    #: Per incident meant for the detector: the oracle's time to detect in windows (:meth:`Truth.earliest`; ``None``:
    #: it could not call it either), and the detector's own (``None``: missed).
    earliest: list[float | None] = field(default_factory=list)
    ttd: list[float | None] = field(default_factory=list)


@dataclass
class Summary:
    """A detector on a scenario (at one volume) over all seeds."""

    detector: str
    scenario: str
    runs: int
    alerts: int
    true_positives: int
    incidents: int
    detected: int
    ttd_windows: list[float]
    label_true_positives: int = 0
    volume: float = 2400.0
    days: float = 0.0
    shape: str = "city"
    size: float | None = None
    phrasings: str = "tuned"
    visible: int = 0  # incidents at or above VISIBLE
    visible_detected: int = 0
    #: The oracle's time to detect (:meth:`Truth.earliest`) of each incident the detector found, where it had one.
    oracle_ttd_windows: list[float] = field(default_factory=list)

    @property
    def visible_recall(self) -> float | None:
        """Recall over the incidents an oracle sees at one in a million (:data:`VISIBLE`)."""
        return self.visible_detected / self.visible if self.visible else None

    @property
    def size_text(self) -> str:
        return "own" if self.size is None else f"×{self.size:g}"

    @property
    def false_alarms_per_week(self) -> float | None:
        """False positives per simulated week, every day of every run counted (history included)."""
        return (self.alerts - self.true_positives) / self.days * 7 if self.days else None

    @property
    def precision(self) -> float | None:
        return self.true_positives / self.alerts if self.alerts else None

    @property
    def label_precision(self) -> float | None:
        """Precision by the incident's labels and words (the stricter first judge)."""
        return self.label_true_positives / self.alerts if self.alerts else None

    @property
    def recall(self) -> float | None:
        return self.detected / self.incidents if self.incidents else None

    @property
    def median_ttd(self) -> float | None:
        return statistics.median(self.ttd_windows) if self.ttd_windows else None

    @property
    def median_oracle_ttd(self) -> float | None:
        """The oracle's median time to detect the same incidents (what the evidence allowed)."""
        return statistics.median(self.oracle_ttd_windows) if self.oracle_ttd_windows else None


def detector_of(rule: Any) -> str | None:
    """The detector a rule is (``None``: a plain rule, not judged here)."""
    detector = getattr(rule, "detector_kind", None)
    return detector if detector in DETECTORS else None


def _cohort_agrees(alert: Alert, incident: Any) -> bool:
    dims = {k: v for k, v in alert.labels.items() if k in DIMENSIONS}
    common = set(dims) & set(incident.labels)
    return bool(common) and all(dims[k] == incident.labels[k] for k in common)


def _silence_about(alert: Alert, incident: Any) -> bool:
    """A silence has no complaints of its own: it is about a lost intake when it names the silent cohort."""
    return incident.kind in SILENCES and _cohort_agrees(alert, incident)


def _about_by_labels(alert: Alert, incident: Any, words: Sequence[str], detector: str) -> bool:
    if detector == "cohort_silence":
        return _silence_about(alert, incident)
    if detector == "cohort_spike":
        return _cohort_agrees(alert, incident)
    terms = [t["term"] for t in alert.evidence.get("terms", [])] or [alert.evidence.get("lead_term", "")]
    return any(w in term for term in terms for w in words)


@dataclass
class Truth:
    """What the simulation knows: each complaint's event id, cohort labels and time, and the incident's."""

    complaints: dict[str, tuple[str, float, dict[str, str]]]  # event id → (complaint id, epoch, labels)

    @classmethod
    def of(cls, events: Iterable[dict[str, Any]]) -> Truth:
        out = {}
        for e in events:
            if e.get("event_type") == "complaint.opened":
                labels = {d: str(e[d]) for d in DIMENSIONS if e.get(d) is not None}
                out[e["event_id"]] = (e["complaint_id"], dt.datetime.fromisoformat(e["ts"]).timestamp(), labels)
        return cls(out)

    def about(self, alert: Alert, keys: set[str], incident: Any = None, detector: str | None = None) -> bool:
        """Whether the alert is the incident's doing (see the module docstring); ``detector``: the alert's source
        unless told."""
        detector = detector or alert.source
        if detector == "cohort_silence":
            return _silence_about(alert, incident)
        if detector == "cohort_spike":
            ev = alert.evidence
            # the complaints the decision counted: of the cohort that decided (a broader one, when its drill-down
            # named this alert's), else of the alert's own
            decided = ev.get("decided_by")
            cohort = dict(parse_cohort(decided)) if decided is not None else {k: v for k, v in alert.labels.items() if k in DIMENSIONS}
            end = alert.starts_at.timestamp()
            # The alert's numbers are its decision's: over the span that showed it (``span_seconds``); the CUSUM's
            # sustained rise has no span, so its trailing window's count and expectation are judged instead.
            if ev.get("span_seconds"):
                begin, excess = end - ev["span_seconds"], ev["observed"] - ev["expected"]
            else:
                begin = dt.datetime.fromisoformat(ev["window_start"]).timestamp()
                excess = ev.get("window_observed", ev["observed"]) - ev.get("window_expected", ev["expected"])
            own = sum(
                1
                for cid, ts, labels in self.complaints.values()
                if cid in keys and begin <= ts < end and all(labels.get(k) == v for k, v in cohort.items())
            )
            return own > 0 and own >= 0.5 * excess
        ids = alert.evidence.get("event_ids", [])
        own = sum(1 for i in ids if i in self.complaints and self.complaints[i][0] in keys)
        return bool(ids) and own > len(ids) / 2

    def visibility(self, incident: Any, days: int = 7) -> float:
        """What an oracle sees of ``incident`` (see the module docstring): −log10 of the Poisson tail of its
        cohort's complaints over its span, against that cohort's mean over the same hours of the ``days`` before
        (a silence: of none at all)."""
        start = dt.datetime.fromisoformat(incident.start).timestamp()
        end = dt.datetime.fromisoformat(incident.end).timestamp()
        cohort = incident.labels.items()
        spans = [(start - d * 86400.0, end - d * 86400.0) for d in range(days + 1)]  # d = 0: the incident's own
        counts = [0] * (days + 1)
        for _, ts, labels in self.complaints.values():
            if spans[-1][0] <= ts < end and all(labels.get(k) == v for k, v in cohort):
                for d, (begin, stop) in enumerate(spans):
                    if begin <= ts < stop:
                        counts[d] += 1
        usual = max(sum(counts[1:]) / days, 0.1)  # an empty history still expects a little (as SpikeTest does)
        if incident.kind in SILENCES:
            return usual / math.log(10)  # P(0) = e^−usual
        return -math.log10(max(_POISSON.tail(counts[0], usual), 1e-300))  # the detectors' own count model, Poisson

    def earliest(self, incident: Any, background: Any, until: float, step: float = ORACLE_STEP) -> float | None:
        """The oracle's time to detect ``incident``, in seconds from its start (``None``: not by ``until``).

        The oracle knows the incident's cohort, its start and the rate its ordinary complaints are drawn from
        (``background``, a :class:`~streams.simulator.scenarios.Background`). Every ``step`` from the start it
        tests the cohort's complaints since the start, once, against that rate: the first step at which their
        Poisson tail is below one in a million (:data:`VISIBLE`; a silence: receiving none is that unlikely) is
        when it knows. A detector tests every cohort and span against a learnt baseline at that alpha, so it
        cannot in general be sooner: this is what the evidence allows, not a target to tune to."""
        start = dt.datetime.fromisoformat(incident.start).timestamp()
        labels = dict(incident.labels)
        times = sorted(
            ts for _, ts, lab in self.complaints.values() if start <= ts < until and all(lab.get(k) == v for k, v in labels.items())
        )
        limit = 10.0**-VISIBLE
        at = start + step
        while at <= until:
            usual = background.expected(labels, start, at)
            seen = bisect.bisect_left(times, at)
            if incident.kind in SILENCES:
                if seen == 0 and math.exp(-usual) < limit:
                    return at - start
            elif _POISSON.tail(seen, max(usual, 1e-9)) < limit:
                return at - start
            at += step
        return None


def judge(
    alerts: Iterable[Alert],
    incidents: Sequence[Any],
    scenario: str,
    seed: int,
    window: dict[str, float],
    truth: Truth | None = None,
    detectors: dict[str, str] | None = None,
    background: Any = None,
) -> list[Outcome]:
    """Score one run's alerts against its incidents, per detector (``window``: seconds per detector;
    ``detectors``: rule id → detector, else an alert's ``source`` names it).

    Without ``truth`` (the simulation's events) an alert is judged by the incident's labels and words only. With
    it and the simulation's ``background`` as well, each incident also gets the oracle's time to detect
    (:meth:`Truth.earliest`)."""
    from streams.simulator.scenarios import INCIDENT_WORDS

    def meant_for(name: str, kind: str) -> bool:
        return (kind in SILENCES) == (name == "cohort_silence")

    outcomes = {name: Outcome(name, scenario, seed, incidents=sum(meant_for(name, i.kind) for i in incidents)) for name in DETECTORS}
    first_hit: dict[tuple[str, int], float] = {}
    seen: set[str] = set()
    keys = [set(incident.keys) for incident in incidents]
    for alert in alerts:
        detector = (detectors or {}).get(alert.rule_id, alert.source)
        if detector not in outcomes or alert.status != "firing" or alert.alert_id in seen:
            continue
        seen.add(alert.alert_id)
        out = outcomes[detector]
        size = window.get(detector, 3600.0)
        detected_at = alert.starts_at.timestamp()  # the end of the window that showed it
        hit = by_labels = False
        for i, incident in enumerate(incidents):
            start = dt.datetime.fromisoformat(incident.start).timestamp()
            end = dt.datetime.fromisoformat(incident.end).timestamp()
            if not start < detected_at <= end + 2 * size:
                continue
            labelled = _about_by_labels(alert, incident, INCIDENT_WORDS.get(incident.kind, ()), detector)
            by_labels = by_labels or labelled
            if labelled if truth is None else truth.about(alert, keys[i], incident, detector):
                hit = True
                key = (detector, i)
                first_hit[key] = min(first_hit.get(key, detected_at), detected_at)
        out.label_true_positives += by_labels
        if hit:
            out.true_positives += 1
        else:
            out.false_positives += 1
            out.false_alerts.append(f"{alert.starts_at:%m-%d %H:%M} {alert.summary}")
    for (source, i), at in first_hit.items():
        out = outcomes[source]
        out.detected += 1
        start = dt.datetime.fromisoformat(incidents[i].start).timestamp()
        out.ttd_windows.append(round((at - start) / window.get(source, 3600.0), 2))
    if truth is not None:
        visibility = [round(truth.visibility(incident), 2) for incident in incidents]
        for name, out in outcomes.items():
            size = window.get(name, 3600.0)
            for i, incident in enumerate(incidents):
                if meant_for(name, incident.kind):
                    start = dt.datetime.fromisoformat(incident.start).timestamp()
                    out.visibility.append(visibility[i])
                    out.found.append((name, i) in first_hit)
                    out.ttd.append(round((first_hit[name, i] - start) / size, 2) if (name, i) in first_hit else None)
                    if background is not None:
                        until = dt.datetime.fromisoformat(incident.end).timestamp() + 2 * size  # as long as a hit counts
                        seconds = truth.earliest(incident, background, until)
                        out.earliest.append(None if seconds is None else round(seconds / size, 2))
    return list(outcomes.values())


#: The default scenario's complaints and completed orders a day, and customers (the volume grid scales all three).
_BASE = (2400.0, 2000.0, 20000)
#: How the events reach the detectors: (seconds an event may arrive after its time, share delivered twice).
#: ``contract`` is what the event contract allows (at-least-once, out of order by minutes), within the engine's
#: five minutes of allowed lateness; ``ordered`` is every event once, in event-time order.
DELIVERIES: dict[str, tuple[float, float]] = {"ordered": (0.0, 0.0), "contract": (240.0, 0.02)}


@dataclass(frozen=True)
class Cell:
    """A point of the grid beside the scenario: complaints a day, the background's seasonal shape, the incident's
    size (its multiplier on the cohort's volume; ``None``: the scenario's own), its phrasing bank, and how the
    events are delivered (:data:`DELIVERIES`)."""

    volume: float = _BASE[0]
    shape: str = "city"
    size: float | None = None
    phrasings: str = "tuned"
    delivery: str = "ordered"


def scenario_config(kind: str, seed: int, volume: float = _BASE[0], cell: Cell | None = None) -> Any:
    """The scenario at ``volume`` complaints a day, its orders and customers in proportion (and ``cell``'s shape,
    incident size and phrasings)."""
    from streams.simulator.scenarios import ScenarioConfig

    cell = cell or Cell(volume)
    scale = volume / _BASE[0]
    return ScenarioConfig(
        kind=kind,
        seed=seed,
        complaints_per_day=volume,
        orders_per_day=_BASE[1] * scale,
        customers=max(500, round(_BASE[2] * scale)),
        shape=cell.shape,
        size=cell.size,
        phrasings=cell.phrasings,
        disorder_seconds=DELIVERIES[cell.delivery][0],
        redeliver_share=DELIVERIES[cell.delivery][1],
    )


def run_scenario(task: tuple[str, int, str] | tuple[str, int, str, float] | tuple[str, int, str, float, Cell]) -> list[Outcome]:
    """One scenario run (a process-pool task): simulate, replay through the detector rules, judge."""
    kind, seed, rules_dir = task[:3]
    volume = task[3] if len(task) > 3 else _BASE[0]
    cell = task[4] if len(task) > 4 else Cell(volume)
    from rules.loader import load_rules
    from streams.backtest import Collect
    from streams.engine import DictBackend, Engine, EngineConfig
    from streams.local import LocalRunner
    from streams.simulator.scenarios import Background, scenario

    loaded = load_rules(rules_dir)
    rules = [r for r in loaded.rules if detector_of(r) is not None]
    sim = scenario(config := scenario_config(kind, seed, volume, cell))
    collect = Collect()
    engine = Engine(rules, DictBackend(), EngineConfig(allowed_lateness=300.0, idle_after=None))
    LocalRunner.replaying(engine, [collect]).run(sim.lines(), close=True)
    detectors = {r.rule_id: detector_of(r) or "" for r in rules}
    windows = {detectors[r.rule_id]: r.window.size for r in rules}  # type: ignore[attr-defined]
    outcomes = judge(collect.alerts, sim.incidents, kind, seed, windows, Truth.of(sim.events), detectors, Background.of(config))
    days = sim.config.days + sim.config.history_days
    return [
        dataclasses.replace(o, volume=volume, days=days, shape=cell.shape, size=cell.size, phrasings=cell.phrasings, delivery=cell.delivery)
        for o in outcomes
    ]


def evaluate(
    scenarios: Sequence[str],
    seeds: Sequence[int],
    rules_dir: str,
    workers: int = 2,
    progress: Callable[[], None] | None = None,
    volumes: Sequence[float] = (_BASE[0],),
    shapes: Sequence[str] = ("city",),
    sizes: Sequence[float | None] = (None,),
    phrasings: Sequence[str] = ("tuned",),
    delivery: str = "ordered",
) -> list[Outcome]:
    """Every volume × shape × size × phrasing bank × scenario × seed, on ``workers`` processes (the largest volumes
    first: they take longest), the events delivered as ``delivery`` says (:data:`DELIVERIES`). A size applies to
    the scenarios that add complaints (a silence has none to add)."""
    cells = [
        Cell(volume, shape, size, bank, delivery)
        for volume in sorted(volumes, reverse=True)
        for shape in shapes
        for size in sizes
        for bank in phrasings
    ]
    tasks = [(kind, seed, rules_dir, cell.volume, cell) for cell in cells for kind in scenarios for seed in seeds]
    out: list[Outcome] = []
    if workers <= 1:
        for task in tasks:
            out.extend(run_scenario(task))
            if progress:
                progress()
        return out
    with ProcessPoolExecutor(workers) as pool:
        for result in pool.map(run_scenario, tasks):
            out.extend(result)
            if progress:
                progress()
    return out


#: The grid's axes besides the scenario.
AXES = ("volume", "shape", "size", "phrasings")
#: What a summary shows for an axis pooled over (``summarise(keep=...)``).
POOLED = "all"


def summarise(outcomes: Iterable[Outcome], keep: Sequence[str] = AXES) -> list[Summary]:
    """Per detector, grid point and scenario, and per detector and grid point over all scenarios (scenario
    ``all``). A grid point is the outcome's value on each axis in ``keep``; the others are pooled (shape and
    phrasings then read ``all``, volume 0, size ``None``)."""
    groups: dict[tuple[str, float, str, float, str, str], list[Outcome]] = {}
    for o in outcomes:
        point = (
            o.detector,
            o.volume if "volume" in keep else 0.0,
            o.shape if "shape" in keep else POOLED,
            (o.size or 0.0) if "size" in keep else 0.0,  # 0: the scenario's own size
            o.phrasings if "phrasings" in keep else POOLED,
        )
        groups.setdefault((*point, o.scenario), []).append(o)
        groups.setdefault((*point, "all"), []).append(o)
    out = []
    for (detector, volume, shape, size, bank, scenario), runs in sorted(groups.items()):
        out.append(
            Summary(
                detector,
                scenario,
                len(runs),
                sum(o.true_positives + o.false_positives for o in runs),
                sum(o.true_positives for o in runs),
                sum(o.incidents for o in runs),
                sum(o.detected for o in runs),
                [t for o in runs for t in o.ttd_windows],
                sum(o.label_true_positives for o in runs),
                volume,
                sum(o.days for o in runs),
                shape,
                size or None,
                bank,
                sum(v >= VISIBLE for o in runs for v in o.visibility),
                sum(v >= VISIBLE and f for o in runs for v, f in zip(o.visibility, o.found, strict=True)),
                [e for o in runs for e, f in zip(o.earliest, o.found, strict=False) if f and e is not None],
            )
        )
    return out


def plot_axis(outcomes: Sequence[Outcome], axis: str, path: Path) -> Path:
    """Recall (solid) and precision (dashed) of each detector against one axis of the grid (``size``, ``shape`` or
    ``phrasings``), a line per volume, every other axis and every scenario pooled (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    summaries = [s for s in summarise(outcomes, keep=("volume", axis)) if s.scenario == "all"]
    detectors = sorted({s.detector for s in summaries if s.incidents})  # one with no incident of its kind: nothing to show
    label = {"size": lambda s: s.size_text, "shape": lambda s: s.shape, "phrasings": lambda s: s.phrasings}[axis]
    values = sorted({label(s) for s in summaries}, key=lambda v: (v != "own", float(v[1:]) if v.startswith("×") else 0.0, v))
    fig, axes = plt.subplots(1, len(detectors), figsize=(5.5 * len(detectors), 3.8), squeeze=False)
    for ax, detector in zip(axes[0], detectors, strict=True):
        for volume in sorted({s.volume for s in summaries}):
            mine = {label(s): s for s in summaries if s.detector == detector and s.volume == volume}
            xs = [i for i, v in enumerate(values) if v in mine]
            nan = float("nan")  # no alert: no precision (a gap, not a zero)
            line = ax.plot(xs, [mine[values[i]].recall or 0 for i in xs], marker="o", label=f"{volume:,.0f}/day recall")[0]
            precision = [p if (p := mine[values[i]].precision) is not None else nan for i in xs]
            ax.plot(xs, precision, marker="s", linestyle="--", color=line.get_color(), alpha=0.6)
        ax.axhline(0.95, color="grey", linestyle=":", linewidth=1)
        ax.set_xticks(range(len(values)), values)
        ax.set_ylim(0, 1.05)
        ax.set_xlabel({"size": "incident size (× its cohort's volume)", "shape": "seasonal shape", "phrasings": "phrasing bank"}[axis])
        ax.set_title(f"{detector}: recall (—) and precision (--)")
        ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_visibility(outcomes: Sequence[Outcome], path: Path) -> Path:
    """Each incident as a dot at its visibility (what an oracle sees, see the module docstring), found (filled) or
    missed (hollow), a row per volume and a column per detector; the line at :data:`VISIBLE` (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    detectors = [d for d in DETECTORS if any(o.detector == d and o.visibility for o in outcomes)]
    volumes = sorted({o.volume for o in outcomes if o.visibility})
    kinds = sorted({o.scenario for o in outcomes if o.visibility})
    fig, axes = plt.subplots(len(volumes), len(detectors), figsize=(5 * len(detectors), 0.5 + 0.45 * len(kinds) * len(volumes)),
                             squeeze=False)  # fmt: skip
    for row, volume in zip(axes, volumes, strict=True):
        for ax, detector in zip(row, detectors, strict=True):
            mine = [k for k in kinds if any(o.detector == detector and o.scenario == k and o.visibility for o in outcomes)]
            for y, kind in enumerate(mine):
                runs = [o for o in outcomes if o.detector == detector and o.volume == volume and o.scenario == kind]
                points = [(max(v, 0.1), f) for o in runs for v, f in zip(o.visibility, o.found, strict=True)]
                found = [v for v, f in points if f]
                missed = [v for v, f in points if not f]
                ax.scatter(found, [y] * len(found), color="tab:green", s=30, label="found" if y == 0 else None)
                ax.scatter(missed, [y] * len(missed), facecolors="none", edgecolors="tab:red", s=30, label="missed" if y == 0 else None)
            ax.axvline(VISIBLE, color="grey", linestyle=":", linewidth=1)
            ax.set_xscale("log")
            ax.set_yticks(range(len(mine)), mine)
            ax.set_ylim(-0.6, len(mine) - 0.4)
            ax.set_title(f"{detector}, {volume:,.0f} complaints/day", fontsize=9)
            ax.set_xlabel("visibility: −log10 P(cohort's count over the span)", fontsize=8)
            ax.legend(loc="lower right", fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot(summaries: Sequence[Summary], path: Path) -> Path:
    """Precision, recall and time-to-detect per scenario (at the default volume, else the first), one row per
    detector, and with several volumes, recall and false alarms a week against the volume (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    detectors = sorted({s.detector for s in summaries})
    volumes = sorted({s.volume for s in summaries})
    shown = _BASE[0] if _BASE[0] in volumes else volumes[0]
    columns = 3 if len(volumes) > 1 else 2
    fig, axes = plt.subplots(len(detectors), columns, figsize=(6 * columns, 3.6 * len(detectors)), squeeze=False)
    for row, detector in enumerate(detectors):
        mine = [s for s in summaries if s.detector == detector and s.scenario != "all" and s.volume == shown]
        names = [s.scenario for s in mine]
        x = range(len(mine))
        ax = axes[row][0]
        ax.bar([i - 0.2 for i in x], [s.precision if s.precision is not None else 0 for s in mine], 0.4, label="precision")
        ax.bar([i + 0.2 for i in x], [s.recall if s.recall is not None else 0 for s in mine], 0.4, label="recall")
        ax.axhline(0.95, color="grey", linestyle=":", linewidth=1)
        ax.set_xticks(list(x), names, rotation=20)
        ax.set_ylim(0, 1.05)
        ax.set_title(f"{detector}: precision and recall per scenario ({shown:,.0f}/day)")
        ax.legend(loc="lower left")
        ax = axes[row][1]
        data = [s.ttd_windows or [0] for s in mine if s.incidents]
        if data:
            ax.boxplot(data, tick_labels=[s.scenario for s in mine if s.incidents])
        else:  # none of these scenarios has an incident this detector is meant to find
            ax.text(0.5, 0.5, "no incident of its kind in these scenarios", ha="center", va="center", transform=ax.transAxes)
        ax.axhline(1.0, color="grey", linestyle=":", linewidth=1)
        ax.set_title(f"{detector}: time to detect (windows)")
        if columns == 3:
            overall = [s for s in summaries if s.detector == detector and s.scenario == "all"]
            ax = axes[row][2]
            ax.plot([s.volume for s in overall], [s.recall or 0 for s in overall], marker="o", label="recall")
            ax.plot([s.volume for s in overall], [s.precision or 0 for s in overall], marker="s", label="precision")
            ax.set_xscale("log")
            ax.set_ylim(0, 1.05)
            ax.set_xlabel("complaints a day")
            twin = ax.twinx()
            twin.bar([s.volume for s in overall], [s.false_alarms_per_week or 0 for s in overall], width=[v * 0.3 for v in volumes],
                     alpha=0.3, color="red", label="false alarms / week")  # fmt: skip
            twin.set_ylim(0, 1.1 * max([1.0, *(s.false_alarms_per_week or 0 for s in overall)]))  # the target: at most 1
            twin.set_ylabel("false alarms a week")
            ax.set_title(f"{detector}: by volume (all scenarios)")
            ax.legend(loc="lower left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
