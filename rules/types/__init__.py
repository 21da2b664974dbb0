"""Built-in rule types, one module each."""

from rules.types import match, sla

__all__ = ["match", "sla"]
