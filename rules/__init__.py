"""The rule language: YAML rule files compiled into engine rules.

Each rule type is one module under :mod:`rules.types` holding its spec, its
compiled rule class and its registration. :func:`rules.loader.load_rules`
reads a directory and returns compiled rules plus located errors.
"""

from rules.loader import LoadResult, RuleError, load_rules

__all__ = ["LoadResult", "RuleError", "load_rules"]
