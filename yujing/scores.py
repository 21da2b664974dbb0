"""Detector scores: how unusual each cohort or term looked when its window was judged.

Alerts say *that* something crossed a line; scores show how close everything
came, for the trend panels in Grafana and for tuning sensitivity. The detector
rules report the top few subjects of each judged window through
``RuleContext.score``; the pipeline exports them to Prometheus (the top k per
rule only, so the series stay bounded) and to sinks that keep them
(ClickHouse's ``detector_scores``). Scores are telemetry: a lost one is a gap
in a panel, never a lost alert, so writing them is attempted once and never
holds up the stream.
"""

from __future__ import annotations

import msgspec

__all__ = ["Score"]


class Score(msgspec.Struct, frozen=True, array_like=True):
    """One subject's significance at the end of a judged window.

    ``score`` is the detector's own scale: ``-log10`` of the count model's tail
    probability for a cohort, the SigniTrend significance for a term.

    >>> Score("complaint-spike", "cohort_spike", "region=宁波", 1773640800.0, 7.2, 45, 11.3).subject
    'region=宁波'
    """

    rule_id: str
    source: str
    subject: str  # a cohort (``region=宁波,product=宽带``) or a term (``多扣费``, scoped ``region=宁波|断网``)
    at: float  # end of the judged window, epoch seconds
    score: float
    observed: float
    expected: float
