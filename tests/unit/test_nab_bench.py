"""bench/nab_tweets.py's scoring and replay, on small series (the NAB data itself is not in the repository)."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from bench.nab_tweets import STEP, Series, complaint_lines, ewma_alerts, nab_score, summarise

SCHEMA = Path(__file__).resolve().parents[2] / "docs" / "contracts" / "events.schema.json"
DAY = 86400.0


def _series(days: int = 14, window: tuple[float, float] = (10 * DAY, 10.5 * DAY)) -> Series:
    times = [i * STEP for i in range(int(days * DAY / STEP))]
    counts = [100 if window[0] + 0.2 * DAY <= t < window[0] + 0.25 * DAY else 10 for t in times]
    return Series("T", times, counts, [window])


def test_nab_scores_nothing_zero_and_an_alert_at_each_window_s_start_a_hundred() -> None:
    s = _series()
    assert summarise("null", [s], [[]]).score == 0.0
    assert summarise("perfect", [s], [[10 * DAY]]).score == pytest.approx(100.0)
    early, late = nab_score(s, [10.05 * DAY])[0], nab_score(s, [10.45 * DAY])[0]
    assert early > late > nab_score(s, [])[0]  # found, and the earlier the better
    score, detected, outside = nab_score(s, [3 * DAY, 10.1 * DAY, 10.2 * DAY, 12 * DAY])
    assert (detected, outside) == (1, 2)  # one detection a window; the rest are false positives
    assert score < nab_score(s, [10.1 * DAY])[0]


def test_the_ewma_reference_flags_the_burst_once() -> None:
    s = _series()
    flags = ewma_alerts(s, k=5.0, alpha=0.01)
    assert len(flags) == 1 and 10.2 * DAY <= flags[0] <= 10.3 * DAY


def test_the_replayed_complaints_meet_the_event_contract_and_keep_the_counts() -> None:
    s = Series("KO", [0.0, STEP], [3, 1], [])
    lines = [json.loads(line) for line in complaint_lines(s)]
    validator = jsonschema.Draft202012Validator(json.loads(SCHEMA.read_text(encoding="utf-8")))
    for event in lines:
        validator.validate(event)
    assert len(lines) == 4 and {e["product"] for e in lines} == {"KO"}
    assert [e["ts"] for e in lines] == ["1970-01-01T00:00:50Z", "1970-01-01T00:02:30Z", "1970-01-01T00:04:10Z", "1970-01-01T00:07:30Z"]


def test_the_pack_s_spike_rule_finds_a_tenfold_hour_in_a_replayed_series() -> None:
    from bench.nab_tweets import yujing_alerts

    s = _series()
    alerts = yujing_alerts(s, str(Path(__file__).resolve().parents[2] / "rules" / "packs" / "default"))
    assert nab_score(s, alerts)[1:] == (1, 0)  # found, and nothing else raised


def test_the_plot_shows_each_series_with_its_windows_and_both_detectors_alerts(tmp_path: Path) -> None:
    from bench.nab_tweets import plot

    s = _series()
    path = plot([s, s], [[10.2 * DAY], []], [[3 * DAY], [10.25 * DAY]], "EWMA", tmp_path / "nab.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 10_000
