"""Built-in rule types, one module each."""

from rules.types import flatline, match, sequence, sla, threshold

__all__ = ["flatline", "match", "sequence", "sla", "threshold"]
