"""``yujing eval`` as a user runs it: labelled scenarios through the detectors, scored, tabled and plotted."""

from __future__ import annotations

import json
from pathlib import Path

import msgspec

from tests.unit.test_cli import yujing


def test_eval_scores_each_detector_per_scenario_and_writes_a_plot(tmp_path: Path) -> None:
    out = tmp_path / "eval"
    done = yujing("eval", "--seeds", "1", "--scenarios", "outage,channel_silence,benign", "--out", str(out), timeout=600)
    assert done.returncode == 0, done.stderr
    assert "precision" in done.stdout and "recall" in done.stdout
    outcomes = json.loads((out / "outcomes.json").read_text(encoding="utf-8"))
    by = {(o["detector"], o["scenario"]): o for o in outcomes}
    detectors, scenarios = ("cohort_spike", "hot_word", "cohort_silence"), ("outage", "channel_silence", "benign")
    assert set(by) == {(d, s) for d in detectors for s in scenarios}
    # Each detector is judged on the incidents it is meant for: the fibre cut for spikes and words, the lost channel
    # for silences (a silence has no complaints to spike or fill with words).
    for detector, scenario in (("cohort_spike", "outage"), ("hot_word", "outage"), ("cohort_silence", "channel_silence")):
        found = by[(detector, scenario)]
        assert found["incidents"] == 1 and found["detected"] == 1, found
        assert 0 < found["ttd_windows"][0] <= 2
    assert by[("cohort_silence", "outage")]["incidents"] == 0 and by[("cohort_spike", "channel_silence")]["incidents"] == 0
    for detector in detectors:  # and nothing else alerts: ordinary days stay quiet, and no detector cries the others' wolf
        assert sum(by[(detector, s)]["false_positives"] for s in scenarios) == 0, [by[(detector, s)] for s in scenarios]
    assert (out / "eval.png").stat().st_size > 10_000
    # what an oracle sees of each incident, beside whether it was found, and the plot of both
    assert by[("cohort_spike", "outage")]["visibility"][0] > 6 and by[("cohort_spike", "outage")]["found"] == [True]
    assert by[("cohort_silence", "channel_silence")]["found"] == [True] and by[("hot_word", "benign")]["visibility"] == []
    assert "recall (visible)" in done.stdout
    assert (out / "eval-visibility.png").stat().st_size > 10_000
    # and the oracle's time to detect each incident, beside the detector's own, in the outcomes and the table
    spike = by[("cohort_spike", "outage")]
    assert spike["ttd"] == spike["ttd_windows"] and 0 < spike["earliest"][0] <= 3, spike
    assert "oracle's TTD" in done.stdout


def test_eval_refuses_a_rules_directory_without_detectors(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "r.yaml").write_text("id: r\ntype: match\ntitle: t\nseverity: minor\non: complaint.opened\nsummary: s\n", encoding="utf-8")
    done = yujing("eval", "--rules", str(rules), "--seeds", "1")
    assert done.returncode == 2 and "no detector" in done.stderr


def _complaint(n: int, minute: int, **labels: str) -> dict[str, object]:
    return {
        "event_id": f"k-{n}",
        "event_type": "complaint.opened",
        "complaint_id": f"cp-{n}",
        "ts": f"2026-03-16T10:{minute:02d}:00+08:00",
        **labels,
    }


def test_an_alert_is_about_an_incident_when_the_incidents_own_complaints_make_it() -> None:
    """The ground-truth judge: a cohort spike's excess is mostly the incident's complaints; a topic's samples are."""
    import datetime as dt

    from streams.evaluate import Truth
    from yujing.alerts import Alert

    events = [_complaint(i, i, region="宁波", product="宽带") for i in range(30)]  # 30 in 宁波 broadband, 10:00–10:29
    truth = Truth.of(events)
    incident = {f"cp-{i}" for i in range(20)}  # 20 of them the incident's
    at = dt.datetime(2026, 3, 16, 3, 0, tzinfo=dt.UTC)  # 11:00 local: the window is 10:00–11:00

    def spike(labels: dict[str, str], observed: int, expected: float) -> Alert:
        evidence = {"observed": observed, "expected": expected, "window_start": "2026-03-16T02:00:00Z"}
        return Alert(
            alert_id="a", source="cohort_spike", rule_id="spike", rule_version="v", severity="major", status="firing",
            starts_at=at, detected_at=at, labels=labels, summary="s", evidence=evidence,
        )  # fmt: skip

    assert truth.about(spike({"region": "宁波"}, 30, 8.0), incident)  # 20 of an excess of 22
    assert not truth.about(spike({"region": "宁波"}, 30, 8.0), {"cp-1", "cp-2"})  # 2 of 22: something else
    assert not truth.about(spike({"region": "杭州"}, 30, 8.0), incident)  # none of them in that cohort
    topic = Alert(
        alert_id="b", source="hot_word", rule_id="hot", rule_version="v", severity="major", status="firing",
        starts_at=at, detected_at=at, labels={}, summary="s", evidence={"event_ids": ["k-1", "k-2", "k-25"]},
    )  # fmt: skip
    assert truth.about(topic, incident) and not truth.about(topic, {"cp-25"})
    # A decision over a longer span is judged over that span (its numbers are the span's): 20 own complaints in the
    # two hours to 11:00 make an excess of 20, though only 10 fall in the last hour.
    two_hours = [_complaint(100 + i, 2 * i, region="宁波") for i in range(30)]  # 10:00–10:58, every two minutes
    early = [{**_complaint(200 + i, i, region="宁波"), "ts": f"2026-03-16T09:{i:02d}:00+08:00"} for i in range(0, 60, 3)]
    spread = Truth.of(two_hours + early)
    mine = {f"cp-{n}" for n in range(200, 220)} | {f"cp-{n}" for n in range(100, 110)}  # 20 before 10:00, 10 after
    span = msgspec.structs.replace(
        spike({"region": "宁波"}, 50, 26.0), evidence={"observed": 50, "expected": 26.0, "span_seconds": 7200.0,
                                                      "window_start": "2026-03-16T02:00:00Z"},
    )  # fmt: skip
    assert spread.about(span, mine)  # 30 of an excess of 24 over the span
    assert not spread.about(msgspec.structs.replace(span, evidence={**span.evidence, "span_seconds": 3600.0}), mine)
    # The CUSUM's sustained rise (no span): its trailing window's own count and expectation.
    cusum = {"observed": 80, "expected": 20.0, "span_seconds": None, "window_observed": 30, "window_expected": 12.0}
    assert spread.about(msgspec.structs.replace(span, evidence={**cusum, "window_start": "2026-03-16T02:00:00Z"}), mine)
    # A silence has no complaints of its own: it is about the incident when it names the silent cohort.
    from streams.simulator.generator import Incident

    lost = Incident("channel_silence", "2026-03-16T10:00:00+08:00", "2026-03-16T14:00:00+08:00", {"channel": "微信"}, [])
    silence = msgspec.structs.replace(topic, source="cohort_spike", labels={"channel": "微信"}, evidence={"observed": 0})
    assert truth.about(silence, set(), lost, "cohort_silence")
    assert not truth.about(msgspec.structs.replace(silence, labels={"channel": "APP"}), set(), lost, "cohort_silence")
    assert not truth.about(msgspec.structs.replace(silence, labels={}), set(), lost, "cohort_silence")  # the whole intake was not


def test_eval_runs_a_volume_grid_and_reports_false_alarms_a_week(tmp_path: Path) -> None:
    out = tmp_path / "grid"
    done = yujing("eval", "--seeds", "1", "--scenarios", "benign", "--volumes", "60,300", "--out", str(out), timeout=600)
    assert done.returncode == 0, done.stderr
    outcomes = json.loads((out / "outcomes.json").read_text(encoding="utf-8"))
    assert sorted({o["volume"] for o in outcomes}) == [60.0, 300.0] and all(o["days"] == 10.0 for o in outcomes)
    assert (out / "eval.png").stat().st_size > 10_000
    bad = yujing("eval", "--volumes", "lots", "--out", str(out))
    assert bad.returncode == 2 and "--volumes takes complaints a day" in bad.stderr


def test_the_simulators_volumes_follow_the_customers() -> None:
    """`yujing simulate --customers` once changed nothing but the customer list: 250 complaints a day for any count."""
    from streams.simulator import SimConfig, simulate

    small, large = (simulate(SimConfig.for_customers(n, days=1, history_days=0)) for n in (3_000, 30_000))
    opened = [sum(e["event_type"] == "complaint.opened" for e in sim.events) for sim in (small, large)]
    assert 8 <= opened[1] / opened[0] <= 12, opened
    assert SimConfig.for_customers(30_000, complaints_per_day=7.0).complaints_per_day == 7.0  # a given volume wins


def test_eval_runs_sizes_shapes_and_held_out_phrasings_and_tables_each_axis(tmp_path: Path) -> None:
    out = tmp_path / "axes"
    args = ("--seeds", "1", "--scenarios", "outage", "--volumes", "600", "--shapes", "city,office")
    done = yujing("eval", *args, "--sizes", "1.5,8", "--phrasings", "heldout", "--out", str(out), timeout=600)
    assert done.returncode == 0, done.stderr
    outcomes = json.loads((out / "outcomes.json").read_text(encoding="utf-8"))
    cells = {(o["shape"], o["size"], o["phrasings"]) for o in outcomes}
    assert cells == {(shape, size, "heldout") for shape in ("city", "office") for size in (1.5, 8.0)}
    assert "by size" in done.stdout and "by shape" in done.stdout and "×8" in done.stdout
    assert (out / "eval-size.png").stat().st_size > 10_000 and (out / "eval-shape.png").stat().st_size > 10_000
    spikes = {(o["shape"], o["size"]): o for o in outcomes if o["detector"] == "cohort_spike"}
    assert all(o["detected"] == 1 for (_, size), o in spikes.items() if size == 8.0), spikes  # an obvious outage is found
    for flag, value, says in (
        ("--sizes", "1", "multipliers above 1"),
        ("--shapes", "weekly", "subset of city"),
        ("--phrasings", "x", "subset"),
    ):
        bad = yujing("eval", flag, value, "--out", str(out))
        assert bad.returncode == 2 and says in bad.stderr, bad.stderr


def test_scenario_axes_change_what_they_say_and_nothing_else() -> None:
    """The tuning shape with the scenario's own size and phrasings is the scenario as it always was (the goldens
    depend on it); a size scales the incident's complaints, a shape moves the day's volume, held-out phrasings share
    no text with the tuned bank."""
    from streams.simulator.scenarios import _INCIDENT_TEXTS, HELDOUT_TEXTS, ScenarioConfig, scenario

    def incident_texts(sim):  # type: ignore[no-untyped-def]
        keys = set(sim.incidents[0].keys)
        return [e["text"] for e in sim.events if e.get("complaint_id") in keys]

    base = scenario(ScenarioConfig(kind="outage", seed=3))
    assert base.events == scenario(ScenarioConfig(kind="outage", seed=3, shape="city", size=None, phrasings="tuned")).events
    small, big = (len(scenario(ScenarioConfig(kind="outage", seed=3, size=f)).incidents[0].keys) for f in (1.5, 9.0))
    assert 10 <= big / small <= 22, (small, big)  # (9 − 1) / (1.5 − 1) = 16 times the added complaints
    heldout = incident_texts(scenario(ScenarioConfig(kind="outage", seed=3, phrasings="heldout")))
    assert heldout and all(any(body.split("，")[0].replace("{region}", "") in t for body in HELDOUT_TEXTS["outage"]) for t in heldout)
    tuned_bodies = {b.replace("{region}", "").replace("{product}", "")[:6] for b in _INCIDENT_TEXTS["outage"]}
    assert not any(body[:6] in t for t in heldout for body in tuned_bodies if body)

    def by_hour(shape: str) -> list[int]:
        import datetime as dt

        counts = [0] * 24
        for e in scenario(ScenarioConfig(kind="benign", seed=1, shape=shape, complaints_per_day=1000)).events:
            if e["event_type"] == "complaint.opened":
                counts[dt.datetime.fromisoformat(e["ts"]).hour] += 1
        return counts

    office, evening = by_hour("office"), by_hour("evening")
    assert sum(office[9:12]) > 3 * sum(office[19:22]) and sum(evening[19:22]) > 2 * sum(evening[9:12])


def test_an_incidents_visibility_is_what_an_oracle_sees_in_its_cohort_and_span() -> None:
    """−log10 P(count over the span | the same hours' mean over the week before): a cohort of three complaints in
    those hours every day that gets 20 is visible (P ≈ 1e-11); one that gets 5 is not (P ≈ 0.18); a silence of a
    cohort that usually has 30 is (P(0) = e^−30), one of a cohort that usually has 3 is not."""
    import datetime as dt

    from streams.evaluate import VISIBLE, Truth
    from streams.simulator.generator import Incident

    def complaints(day: int, n: int, start: int, **labels: str) -> list[dict[str, object]]:
        base = dt.datetime(2026, 3, 16, 10, tzinfo=dt.timezone(dt.timedelta(hours=8))) - dt.timedelta(days=day)
        ts = [(base + dt.timedelta(minutes=i * 100 / max(n, 1))).isoformat() for i in range(n)]  # inside 10:00–11:40
        return [{"event_id": f"k{day}-{start + i}", "event_type": "complaint.opened", "complaint_id": f"c{day}-{start + i}",
                 "ts": t, **labels} for i, t in enumerate(ts)]  # fmt: skip

    def truth(today: int, usual: int) -> Truth:
        events = [e for day in range(1, 8) for e in complaints(day, usual, 0, region="宁波")]
        events += complaints(0, today, 0, region="宁波") + complaints(0, 50, 1000, region="杭州")  # another cohort: ignored
        return Truth.of(events)

    outage = Incident("outage", "2026-03-16T10:00:00+08:00", "2026-03-16T12:00:00+08:00", {"region": "宁波"})
    silence = Incident("channel_silence", "2026-03-16T10:00:00+08:00", "2026-03-16T12:00:00+08:00", {"region": "宁波"})
    assert 10 < truth(20, 3).visibility(outage) < 12
    assert truth(5, 3).visibility(outage) < 1
    assert truth(0, 30).visibility(silence) > VISIBLE > truth(0, 3).visibility(silence)


def test_every_stream_of_a_scenario_ends_with_the_run_an_incident_too() -> None:
    """An incident still going when the run ends is cut there: complaints past the background's end moved the
    watermark on with nothing else beside them, and every other city looked silent (issue 18, 100,000 a day)."""
    import datetime as dt

    from streams.simulator.scenarios import ScenarioConfig, scenario

    crossing = 0
    for seed in range(1, 41):
        sim = scenario(ScenarioConfig(kind="backlog", seed=seed, complaints_per_day=120.0, orders_per_day=240.0, customers=2000))
        end = sim.config.start + dt.timedelta(days=sim.config.days)
        last = max(dt.datetime.fromisoformat(e["ts"]) for e in sim.events)
        assert last < end, (seed, last, end)
        (incident,) = sim.incidents
        incident_end = dt.datetime.fromisoformat(incident.end)
        assert incident_end <= end
        crossing += incident_end == end
    assert crossing, "no seed had a backlog reaching the run's end: the test would not see the cut"


def test_the_oracle_knows_an_incident_when_its_complaints_since_the_start_are_one_in_a_million() -> None:
    """The oracle's time to detect (``Truth.earliest``): every quarter hour from the incident's start, the cohort's
    complaints since the start against the rate its ordinary ones are drawn from. A cohort expecting 2 an hour that
    gets 12 more in its first quarter hour is known at once (14 against 0.5: P ≈ 1e-14); one that gets 2 more each
    quarter hour is known when its tail first falls below one in a million; a silence of a cohort expecting 8 an
    hour when its expectation reaches 13.8 (e^−13.8 = 1e-6), in the second hour; a cohort with no rise, never."""
    import datetime as dt
    import math

    from streams.evaluate import SpikeTest, Truth
    from streams.simulator.generator import Incident

    start = dt.datetime(2026, 3, 16, 10, tzinfo=dt.timezone(dt.timedelta(hours=8)))

    class Flat:
        """A background of ``hourly`` complaints an hour in every cohort."""

        def __init__(self, hourly: float) -> None:
            self.hourly = hourly

        def expected(self, labels: dict[str, str], begin: float, end: float) -> float:
            return self.hourly * (end - begin) / 3600

    def truth(minutes: list[float]) -> Truth:
        events = [{"event_id": f"k{i}", "event_type": "complaint.opened", "complaint_id": f"c{i}", "region": "宁波",
                   "ts": (start + dt.timedelta(minutes=m)).isoformat()} for i, m in enumerate(minutes)]  # fmt: skip
        events.append({"event_id": "x", "event_type": "complaint.opened", "complaint_id": "x", "region": "杭州", "ts": start.isoformat()})
        return Truth.of(events)

    outage = Incident("outage", start.isoformat(), (start + dt.timedelta(hours=3)).isoformat(), {"region": "宁波"})
    until = start.timestamp() + 5 * 3600
    assert truth([1.0] * 14).earliest(outage, Flat(2.0), until) == 900
    steady = [q * 15 + 1 + i for q in range(20) for i in range(3)]  # 3 a quarter hour: 1 expected + 2 more
    tail = SpikeTest(dispersion=0.0).tail
    first = next(q for q in range(1, 21) if tail(3 * q, 0.5 * q) < 1e-6)
    assert truth(steady).earliest(outage, Flat(2.0), until) == first * 900
    assert truth([m * 30.0 for m in range(10)]).earliest(outage, Flat(2.0), until) is None  # 2 an hour: as usual
    silence = Incident("channel_silence", start.isoformat(), (start + dt.timedelta(hours=3)).isoformat(), {"region": "宁波"})
    quarters = math.ceil(6 * math.log(10) / 2.0)  # 8 an hour: 2 a quarter hour, 13.8 reached in the 7th
    assert truth([]).earliest(silence, Flat(8.0), until) == quarters * 900
    assert truth([60.0]).earliest(silence, Flat(8.0), until) is None  # one came in its first hour: not silent since the start


def test_a_scenarios_background_is_what_its_ordinary_complaints_are_drawn_from() -> None:
    """The oracle's rate (``Background``): over the scenario's days, each cohort's complaints are within four
    standard deviations of it (Poisson), by region, product, channel, tier and together, on every seasonal shape."""
    import math

    from streams.evaluate import Truth
    from streams.simulator.scenarios import Background, ScenarioConfig, scenario

    for shape in ("city", "office"):
        cfg = ScenarioConfig(kind="benign", seed=7, complaints_per_day=1200.0, orders_per_day=100.0, customers=3000, shape=shape)
        sim, background = scenario(cfg), Background.of(cfg)
        complaints = Truth.of(sim.events).complaints.values()
        begin, end = cfg.start.timestamp() - cfg.history_days * 86400, cfg.start.timestamp() + cfg.days * 86400
        monday_morning = (cfg.start.timestamp() + 8 * 3600, cfg.start.timestamp() + 13 * 3600)
        cohorts = ({}, {"region": "宁波"}, {"product": "IPTV", "region": "金华"}, {"channel": "APP"}, {"tier": "gold", "channel": "微信"})
        for labels in cohorts:
            for b, e in ((begin, end), monday_morning):
                n = sum(1 for _, ts, lab in complaints if b <= ts < e and all(lab.get(k) == v for k, v in labels.items()))
                mean = background.expected(labels, b, e)
                assert abs(n - mean) < 4 * math.sqrt(mean), (shape, labels, b, n, mean)
