"""Online anomaly detectors (issue 4).

So far: :mod:`detectors.tokenize` (complaint text → terms),
:mod:`detectors.signitrend` (hot words: SigniTrend-style burst scoring in
fixed memory, co-bursting terms grouped into topics) and
:mod:`detectors.baseline` (cohort spikes: a seasonal baseline per cohort in
132 bytes, Poisson significance with a low-volume guard, drill-down by
contribution). Still to come: wiring into the engine and its state, YAML
configuration, and ``yujing eval``.
"""

__all__: list[str] = []
