"""Online anomaly detectors (hot words, cohort spikes). Coming with issue 4; the engine's rule protocol is what they will implement."""

__all__: list[str] = []
