"""The event-time engine. Pure Python: it imports no Kafka or faust module.

Runners hand it batches of ``(partition, event)`` and get alerts back; all
state it keeps goes through a :class:`yujing.protocols.StateBackend`.
"""

from streams.engine.engine import Engine, EngineConfig
from streams.engine.state import DictBackend

__all__ = ["DictBackend", "Engine", "EngineConfig"]
