"""Built-in rule types, one module each."""

from rules.types import match, sequence, sla

__all__ = ["match", "sequence", "sla"]
