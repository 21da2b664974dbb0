"""How one step's spiking cohorts become incidents (:func:`rules.types.cohort_incidents.group_incidents`)."""

from __future__ import annotations

import dataclasses

import msgspec

from detectors.baseline import Spike, SpikeTest
from rules.types.cohort_incidents import Counts, Scored, group_incidents
from streams.engine.state import StateCodec

TEST = SpikeTest(alpha=1e-4, min_count=8, min_ratio=2.0)
APP = "channel=APP"
CHILDREN = ["region=台州,channel=APP", "region=杭州,channel=APP", "product=IPTV,channel=APP"]


def spiking(observed: int, expected: float) -> Scored:
    """A cohort whose newest half window spiked (its span test's numbers are that half window's)."""
    return Scored(
        observed,
        expected,
        Spike(observed, expected, 1e-7),
        1800.0,
        0.01,
        True,
        observed,
        expected,
        False,
        observed,
        expected,
        1800.0,
    )


def step(parent_newest: tuple[int, float] = (231, 97.6), spikes: int = 2) -> dict[str, Scored]:
    """An APP failure as the office shape showed it: region × APP and product × APP each spike at their own
    dispersion, while channel=APP, whose dispersion (0.19) was learnt while its baseline still fitted the steep
    shape, is 2.4 times its expectation and not significant."""
    observed, expected = parent_newest
    scored = {APP: Scored(observed + 120, expected + 100, None, 0.0, 0.19, True, 0, 0.0, False, observed, expected, 1800.0)}
    for child in CHILDREN[:spikes]:
        scored[child] = spiking(40, 9.0)
    scored["region=宁波,channel=APP"] = Scored(12, 10.0, None, 0.0, 0.01, True, 0, 0.0, False, 7, 5.0, 1800.0)
    return scored


def test_children_spiking_under_a_broader_cohort_well_above_normal_are_its_one_alert() -> None:
    """The office shape's APP failure raised thirteen alerts, one per region × APP and product × APP: the channel
    itself was never significant. Its spiking children now make one alert on channel=APP, whose decision is its own
    newest half window (the alert's numbers), with the children as what explains it."""
    scored = step(spikes=3)
    incidents, explained = group_incidents(scored, {}, set(), set(), TEST, 0.5)
    assert incidents == {APP: sorted(CHILDREN)}
    decided = scored[APP].spike
    assert decided is not None and (decided.observed, decided.expected) == (231, 97.6)
    assert scored[APP].span == 1800.0 and not scored[APP].sustained
    assert {c for c, _ in explained[APP]} == set(CHILDREN)
    assert decided.p_value > TEST.alpha  # the channel alone was not significant: its children are the evidence


def test_one_spiking_child_is_its_own_alert_and_so_are_children_of_a_broader_cohort_not_well_above_normal() -> None:
    alone, _ = group_incidents(step(spikes=1), {}, set(), set(), TEST, 0.5)
    assert APP not in alone and CHILDREN[0] in alone
    scored = step(parent_newest=(150, 97.6))  # 1.5 times: two children's incidents, not the channel's
    flat, _ = group_incidents(scored, {}, set(), set(), TEST, 0.5)
    assert APP not in flat and scored[APP].spike is None
    few = step(parent_newest=(7, 2.0))  # below min_count
    assert APP not in group_incidents(few, {}, set(), set(), TEST, 0.5)[0]


def test_an_incident_under_way_is_not_gathered_into_a_new_one() -> None:
    """A child with an alert open stays that alert, and a broader cohort with an alert open under it gathers
    nothing: its new spiking children join the open alert by overlap, or are their own."""
    opened = {CHILDREN[0]}
    incidents, _ = group_incidents(step(spikes=3), {}, opened, opened, TEST, 0.5)
    assert APP not in incidents
    other = "region=台州,product=宽带"  # under region=台州, beside the APP children
    scored = step(spikes=2)
    scored["region=台州"] = dataclasses.replace(scored[APP], newest_observed=200, newest_expected=50.0)
    scored[other] = spiking(30, 6.0)  # open and still elevated: scored every step
    incidents, _ = group_incidents(scored, {}, {other}, {other}, TEST, 0.5)
    assert "region=台州" not in incidents and APP in incidents


def test_counts_stored_before_they_kept_event_ids_read_as_counts_without_ids() -> None:
    """A worker upgraded mid-window reads the counts an earlier version stored ([numerator, denominator])."""
    codec = StateCodec(Counts)
    old = msgspec.msgpack.encode([3, 1])
    assert codec.decode(old) == Counts(3, 1, [])
    assert codec.decode(codec.encode(Counts(2, 0, ["k-1", "k-2"]))) == Counts(2, 0, ["k-1", "k-2"])


def test_a_rise_confined_to_a_cohort_under_an_open_alert_is_that_alerts_incident() -> None:
    """A city's outage lifts the IPTV plan province-wide too (a sustained rise over a day, at 150 complaints a day).
    Its drill-down names city × IPTV, whose rise it all is; that cohort lies under the city's alert, open and
    still elevated: the same incident, which that alert reports. It was a second alert after the outage."""
    city, plan, child = "region=杭州", "product=IPTV", "region=杭州,product=IPTV"
    scored = {
        city: Scored(12, 4.0, None, 0.0, 0.01, True),
        plan: spiking(40, 15.0),
        child: Scored(30, 5.0, None, 0.0, 0.01, True),
        "region=宁波,product=IPTV": Scored(10, 10.0, None, 0.0, 0.01, True),
    }
    incidents, explained = group_incidents(scored, {}, {city}, {city}, TEST, 0.5)
    assert incidents == {}
    assert explained[plan][0][0] == child  # still what explains it
    # with the city's alert gone, the rise is city × IPTV's own incident
    assert group_incidents(scored, {}, set(), set(), TEST, 0.5)[0] == {child: [plan]}
