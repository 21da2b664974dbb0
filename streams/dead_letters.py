"""Dead letters of local runs, as JSON Lines (the worker sends them to ``<topic>.dlq`` instead)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import msgspec

from streams.decode import DeadLetter

__all__ = ["DeadLetterFile"]


class DeadLetterFile:
    """Appends each dead letter (original bytes, origin, reason) as one JSON line."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.count = 0
        self._file = None
        self._encode = msgspec.json.Encoder().encode

    def write(self, letters: Sequence[DeadLetter]) -> None:
        if not letters:
            return
        if self._file is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = open(self.path, "ab")  # noqa: SIM115 (closed in close())
        self._file.write(b"".join(self._encode(d.to_json_record()) + b"\n" for d in letters))
        self._file.flush()
        self.count += len(letters)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
