"""Where alerts go. Each sink is a small module on :class:`sinks.base.RetryingSink`."""

from sinks.base import RetryingSink, SinkGaveUp
from sinks.jsonl import JsonLinesSink

__all__ = ["JsonLinesSink", "RetryingSink", "SinkGaveUp"]
