"""``bench/expectation_bias.py``: the spike rule's forecast of the grid's judged Monday against the simulator's rate."""

from __future__ import annotations

import statistics

from bench.expectation_bias import monday_ratios


def test_the_spike_rules_forecast_of_an_office_intakes_monday_holds_within_15_percent() -> None:
    """An office intake (busy weekdays, a busier Monday, quiet weekends) at 2,400 complaints a day, nine days of
    history from a Saturday: what the rule expects of each cohort in the Monday's office hours, over what the
    simulator draws them from, is within 15 % at every hour (the median over the cohorts; measured 0.87 to 1.10).
    When the week's factors were learnt against an hour mean still learning from the first weekend, those hours
    were expected at 1.25 to 1.63 × what came: an outage had to be that much bigger to show."""
    ratios = monday_ratios("office", 2400.0, 1)
    medians = {hour: statistics.median(ratios[hour]) for hour in range(8, 19)}
    assert all(0.85 < m < 1.15 for m in medians.values()), medians
