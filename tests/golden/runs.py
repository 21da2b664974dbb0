"""The golden cases: simulated inputs through the default pack, every decision of the alert manager recorded.

Each case is a deterministic input (a simulator or detection-scenario seed) run through the
default rule pack and its alert policy exactly as ``yujing run`` runs it (local runner, per
partition watermarks, end-of-input flush). A row is one alert as the sinks receive it:
its id, status, rule, event times (not ``detected_at``, the wall clock), severity, labels and summary, and why it was held (or ``None``).

    python -m tests.golden.runs --write          # regenerate every case's file
    python -m tests.golden.runs --write outage-1 # one case
"""

from __future__ import annotations

import argparse
import gzip
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec

from rules.loader import load_rules
from streams.assembly import build_engine
from streams.config import default_rules_dir, load_config
from streams.engine import DictBackend
from streams.local import LocalRunner
from streams.simulator.generator import SimConfig, simulate
from streams.simulator.scenarios import ScenarioConfig, scenario
from yujing.alerts import Alert

__all__ = ["CASES", "GOLDEN_DIR", "Case", "read_golden", "run_case"]

GOLDEN_DIR = Path(__file__).parent


@dataclass(frozen=True)
class Case:
    """One golden input: a name and how to make its event lines."""

    name: str
    lines: Callable[[], Iterator[bytes]]


def _sim(seed: int, days: float, history_days: float, disorder: float = 0.0) -> Callable[[], Iterator[bytes]]:
    return lambda: simulate(SimConfig(seed=seed, days=days, history_days=history_days, disorder_seconds=disorder)).lines()


def _scenario(kind: str, seed: int) -> Callable[[], Iterator[bytes]]:
    # A third of the scenarios' default volume: past the detectors' week of warm-up, small enough for the unit suite,
    # and still enough for the incident to raise cohort-spike and hot-word alerts.
    config = ScenarioConfig(kind=kind, seed=seed, history_days=8.0, complaints_per_day=800.0, orders_per_day=300.0, customers=8000)
    return lambda: scenario(config).lines()


#: The cases: the simulator's own days (SLA, bills, repeats, red lines; one with events out of order
#: within the allowed lateness) and detection scenarios (cohort spikes and hot words with the rest).
CASES: dict[str, Case] = {
    case.name: case
    for case in (
        Case("sim-1", _sim(1, days=2.0, history_days=4.0)),
        Case("sim-2-disorder", _sim(2, days=1.0, history_days=3.0, disorder=120.0)),
        Case("outage-1", _scenario("outage", 1)),
        Case("billing-2", _scenario("billing", 2)),
        Case("app_login-3", _scenario("app_login", 3)),
    )
}


class _Decisions:
    """A sink that keeps every alert with the manager's decision (sent, or held and why)."""

    name = "golden"

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []

    def write_decisions(self, decisions: Sequence[tuple[Alert, str | None]]) -> None:
        self.rows.extend(row(alert, held) for alert, held in decisions)

    def write(self, alerts: Sequence[Alert]) -> None:
        self.write_decisions([(alert, None) for alert in alerts])

    def close(self) -> None:
        pass


def row(alert: Alert, held: str | None) -> dict[str, Any]:
    """What a golden file keeps of one alert."""
    return {
        "alert_id": alert.alert_id,
        "status": alert.status,
        "rule_id": alert.rule_id,
        "severity": alert.severity,
        "starts_at": alert.starts_at.isoformat(),
        "ends_at": alert.ends_at.isoformat() if alert.ends_at else None,
        "labels": alert.labels,
        "summary": alert.summary,
        "held": held,
    }


def run_case(name: str) -> list[dict[str, Any]]:
    """The decisions of the default pack over case ``name``'s events, in the order the sinks got them."""
    rules_dir = default_rules_dir()
    loaded = load_rules(rules_dir)
    assert loaded.ok, loaded.errors
    config = load_config(None, environ={"YUJING_ALERTING_SILENCES": str(GOLDEN_DIR / "no-silences.jsonl")})
    engine, _ = build_engine(loaded.rules, DictBackend(), config, config.engine.engine_config(idle=False), rules_dir=rules_dir)
    sink = _Decisions()
    LocalRunner.replaying(engine, [sink], partitions=config.kafka.partitions).run(CASES[name].lines())
    return sink.rows


def path_of(name: str) -> Path:
    return GOLDEN_DIR / f"{name}.jsonl.gz"


def read_golden(name: str) -> list[dict[str, Any]]:
    with gzip.open(path_of(name), "rb") as fh:
        return [msgspec.json.decode(line) for line in fh if line.strip()]


def write_golden(name: str, rows: list[dict[str, Any]]) -> Path:
    encode = msgspec.json.Encoder().encode
    # mtime=0: the same rows give the same bytes, so a regeneration that changes nothing changes no file
    with open(path_of(name), "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as fh:
        for r in rows:
            fh.write(encode(r) + b"\n")
    return path_of(name)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--write", action="store_true", help="write the golden files (else only print counts)")
    parser.add_argument("cases", nargs="*", help=f"cases (default all: {', '.join(CASES)})")
    args = parser.parse_args(argv)
    for name in args.cases or CASES:
        started = time.perf_counter()
        rows = run_case(name)
        took = time.perf_counter() - started
        where = write_golden(name, rows) if args.write else "(not written)"
        print(f"{name}: {len(rows)} decisions in {took:.1f}s {where}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
