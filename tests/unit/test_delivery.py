"""The simulator's delivery as the event contract allows (:func:`streams.simulator.delivery.arrival_order`)."""

from __future__ import annotations

import random
from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from streams.evaluate import DELIVERIES, Cell, scenario_config
from streams.simulator.delivery import arrival_order
from streams.simulator.scenarios import scenario


@settings(max_examples=60, deadline=None)
@given(
    times=st.lists(st.floats(0, 3600), max_size=60),
    seed=st.integers(0, 1000),
    disorder=st.sampled_from([0.0, 1.0, 240.0]),
    share=st.sampled_from([0.0, 0.02, 0.5, 1.0]),
)
def test_each_event_arrives_once_or_twice_and_never_after_one_more_than_the_disorder_newer(
    times: list[float], seed: int, disorder: float, share: float
) -> None:
    events = [(ts, n, n) for n, ts in enumerate(times)]
    arrived = arrival_order(events, random.Random(seed), disorder, share)
    copies = Counter(arrived)
    assert set(copies) == set(range(len(times)))
    assert all(c == 1 for c in copies.values()) or share > 0
    assert all(c <= 2 for c in copies.values())
    newest = float("-inf")
    for n in arrived:
        newest = max(newest, times[n])
        assert newest - times[n] <= disorder  # what an engine with that much allowed lateness takes as on time
    if disorder == 0 and share == 0:
        assert arrived == [n for _, n, _ in sorted(events)]


def test_a_scenario_delivered_as_the_contract_allows_holds_the_same_events() -> None:
    ordered = scenario(scenario_config("outage", 1, 500.0, Cell(500.0)))
    contract = scenario(scenario_config("outage", 1, 500.0, Cell(500.0, delivery="contract")))
    share = DELIVERIES["contract"][1]
    ids = Counter(e["event_id"] for e in contract.events)
    assert set(ids) == {e["event_id"] for e in ordered.events}
    assert 0.5 * share < sum(c - 1 for c in ids.values()) / len(ordered.events) < 2 * share
    assert contract.incidents == ordered.incidents
    assert [e["event_id"] for e in contract.events] != [e["event_id"] for e in ordered.events]
