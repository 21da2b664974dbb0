"""Built-in rule types, one module each."""

from rules.types import change, cohort_silence, cohort_spike, compare, flatline, hot_words, match, ratio, sequence, sla, threshold

__all__ = ["change", "cohort_silence", "cohort_spike", "compare", "flatline", "hot_words", "match", "ratio", "sequence", "sla", "threshold"]
