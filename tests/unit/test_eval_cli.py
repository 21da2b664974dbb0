"""``yujing eval`` as a user runs it: labelled scenarios through the detectors, scored, tabled and plotted."""

from __future__ import annotations

import json
from pathlib import Path

from tests.unit.test_cli import yujing


def test_eval_scores_each_detector_per_scenario_and_writes_a_plot(tmp_path: Path) -> None:
    out = tmp_path / "eval"
    done = yujing("eval", "--seeds", "1", "--scenarios", "outage,benign", "--out", str(out), timeout=600)
    assert done.returncode == 0, done.stderr
    assert "precision" in done.stdout and "recall" in done.stdout
    outcomes = json.loads((out / "outcomes.json").read_text(encoding="utf-8"))
    by = {(o["detector"], o["scenario"]): o for o in outcomes}
    assert set(by) == {(d, s) for d in ("cohort_spike", "hot_word") for s in ("outage", "benign")}
    for detector in ("cohort_spike", "hot_word"):
        outage = by[(detector, "outage")]
        assert outage["incidents"] == 1 and outage["detected"] == 1, outage  # the fibre cut is found…
        assert 0 < outage["ttd_windows"][0] <= 2
        assert by[(detector, "benign")]["false_positives"] == 0, by[(detector, "benign")]  # …and ordinary days stay quiet
    assert (out / "eval.png").stat().st_size > 10_000


def test_eval_refuses_a_rules_directory_without_detectors(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "r.yaml").write_text("id: r\ntype: match\ntitle: t\nseverity: minor\non: complaint.opened\nsummary: s\n", encoding="utf-8")
    done = yujing("eval", "--rules", str(rules), "--seeds", "1")
    assert done.returncode == 2 and "no detector" in done.stderr
