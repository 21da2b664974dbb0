"""Online anomaly detectors (issue 4).

So far: :mod:`detectors.tokenize` (complaint text → terms) and
:mod:`detectors.signitrend` (hot words: SigniTrend-style burst scoring in
fixed memory, co-bursting terms grouped into topics). Still to come: cohort
spikes with seasonal count models, wiring into the engine and its state,
YAML configuration, and ``yujing eval``.
"""

__all__: list[str] = []
