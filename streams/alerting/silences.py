"""Silences: matchers and a time span during which matching alerts are recorded but not sent.

A silence is made with ``yujing silence add`` and ends at its ``ends_at`` or
when expired (``yujing silence expire``). Commands are appended to a log (a
JSON Lines file, or the silences topic the workers follow): the log is the
durable record, and folding it gives the current silences. The alert
manager keeps the folded silences in keyed state, so a restarted worker
mutes the same alerts before it has read the log again.

Silences are in wall-clock time, as in Alertmanager: an alert is muted when
its ``detected_at`` lies in ``[starts_at, ends_at)``.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Literal

import msgspec

from streams.alerting.matchers import Matcher, parse_matchers

__all__ = ["Silence", "SilenceCommand", "SilenceFile", "fold_commands", "new_silence"]


class Silence(msgspec.Struct, frozen=True, kw_only=True):
    """Mutes alerts matching all ``matchers`` between ``starts_at`` and ``ends_at`` (epoch seconds).

    >>> s = new_silence(["region=杭州"], starts_at=0, ends_at=3600, created_by="li", comment="cable cut")
    >>> s.active(10), s.active(3600)
    (True, False)
    """

    id: str
    matchers: list[str]
    starts_at: float
    ends_at: float
    created_by: str = ""
    comment: str = ""

    def active(self, at: float) -> bool:
        return self.starts_at <= at < self.ends_at

    def parsed(self) -> tuple[Matcher, ...]:
        return parse_matchers(self.matchers, regex=True)


class SilenceCommand(msgspec.Struct, frozen=True, kw_only=True):
    """One line of the silence log: ``add`` a silence, or ``expire`` one (by id) at ``at``."""

    op: Literal["add", "expire"]
    silence: Silence | None = None
    id: str = ""
    at: float = 0.0


def new_silence(matchers: list[str], *, starts_at: float, ends_at: float, created_by: str = "", comment: str = "") -> Silence:
    """A silence with a content-derived id; raises ``ValueError`` for bad matchers or an empty span."""
    if not matchers:
        raise ValueError("a silence needs at least one matcher (it would mute every alert)")
    parsed = parse_matchers(matchers, regex=True)
    if ends_at <= starts_at:
        raise ValueError("a silence must end after it starts")
    text = json.dumps([[str(m) for m in parsed], starts_at, ends_at, created_by, comment], ensure_ascii=False)
    sid = hashlib.blake2b(text.encode(), digest_size=8).hexdigest()
    return Silence(id=sid, matchers=[str(m) for m in parsed], starts_at=starts_at, ends_at=ends_at, created_by=created_by, comment=comment)


def fold_commands(commands: Iterable[SilenceCommand]) -> dict[str, Silence]:
    """The silences a log describes (expired ones end at their expiry time)."""
    silences: dict[str, Silence] = {}
    for command in commands:
        if command.op == "add" and command.silence is not None:
            silences[command.silence.id] = command.silence
        elif command.op == "expire" and command.id in silences:
            current = silences[command.id]
            silences[command.id] = msgspec.structs.replace(current, ends_at=min(current.ends_at, command.at))
    return silences


_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(SilenceCommand).decode


class SilenceFile:
    """A silence log in a JSON Lines file: appended with ``fsync``, read whole (bad lines are reported, not fatal).

    >>> import tempfile, os
    >>> log = SilenceFile(os.path.join(tempfile.mkdtemp(), "silences.jsonl"))
    >>> s = log.add(new_silence(["rule_id=install-sla"], starts_at=0, ends_at=60))
    >>> list(log.current()) == [s.id]
    True
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.problems: list[str] = []

    def append(self, command: SilenceCommand) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "ab") as fh:
            fh.write(_encode(command) + b"\n")
            fh.flush()
            os.fsync(fh.fileno())

    def add(self, silence: Silence) -> Silence:
        self.append(SilenceCommand(op="add", silence=silence))
        return silence

    def expire(self, silence_id: str, at: float) -> None:
        if silence_id not in self.current():
            raise KeyError(f"no silence with id {silence_id}")
        self.append(SilenceCommand(op="expire", id=silence_id, at=at))

    def commands(self) -> Iterator[SilenceCommand]:
        self.problems = []
        if not self.path.exists():
            return
        for n, line in enumerate(self.path.read_bytes().split(b"\n"), 1):  # the line ends it writes, not \r
            if not line.strip():
                continue
            try:
                yield _decode(line)
            except msgspec.DecodeError as exc:
                self.problems.append(f"{self.path}:{n}: skipped: {exc}")

    def current(self) -> dict[str, Silence]:
        return fold_commands(self.commands())
