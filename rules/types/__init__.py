"""Built-in rule types, one module each."""

from rules.types import change, compare, flatline, match, ratio, sequence, sla, threshold

__all__ = ["change", "compare", "flatline", "match", "ratio", "sequence", "sla", "threshold"]
