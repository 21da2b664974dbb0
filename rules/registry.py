"""Rule types register here: a spec struct (tagged by ``type``) and a builder."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rules.base import RuleSpec
from yujing.protocols import Rule

__all__ = ["RuleType", "register", "rule_types"]


@dataclass(frozen=True)
class RuleType:
    """A rule type: its YAML spec and how to compile that spec into a rule."""

    name: str
    spec: type[RuleSpec]
    build: Callable[[Any, str], Rule]


_TYPES: dict[str, RuleType] = {}


def register(name: str, spec: type[RuleSpec], build: Callable[[Any, str], Rule]) -> None:
    _TYPES[name] = RuleType(name, spec, build)


def rule_types() -> dict[str, RuleType]:
    """Every registered rule type (importing :mod:`rules.types` registers the built-in ones)."""
    import rules.types  # noqa: F401  (registration side effect, once)

    return dict(_TYPES)
