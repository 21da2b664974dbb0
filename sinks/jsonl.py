"""Alerts as JSON Lines (one contract record per line, UTF-8), to a file or stdout."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import IO

import msgspec

from sinks.base import RetryingSink
from yujing.alerts import Alert

__all__ = ["JsonLinesSink"]


class JsonLinesSink(RetryingSink):
    """Appends alerts to ``path`` (``-`` for stdout), flushed after every write.

    >>> import io; buf = io.StringIO()
    >>> JsonLinesSink(stream=buf).name
    'jsonl'
    """

    name = "jsonl"

    def __init__(self, path: str | Path | None = None, *, stream: IO[str] | None = None, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self._own = False
        if stream is not None:
            self.stream = stream
        elif path is None or str(path) == "-":
            self.stream = sys.stdout
        else:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            self.stream = open(path, "a", encoding="utf-8")  # noqa: SIM115 (closed in close())
            self._own = True
        self._encode = msgspec.json.Encoder().encode

    def write_chunk(self, alerts: Sequence[Alert]) -> None:
        self.stream.write("".join(self._encode(a).decode() + "\n" for a in alerts))
        self.stream.flush()

    def close(self) -> None:
        if self._own:
            self.stream.close()
