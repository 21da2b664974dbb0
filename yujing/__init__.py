"""Shared vocabulary of Yujing: events, alerts, durations and the engine's protocols.

This package is deliberately small and imports nothing else from the project,
so that ``rules``, ``detectors``, ``sinks`` and ``streams`` can all depend on
it without import cycles.
"""

__all__: list[str] = []
