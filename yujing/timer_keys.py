"""How the engine names a timer: ``owner + SEP + key``, fired in ``(fire_at, that name)`` order."""

from __future__ import annotations

__all__ = ["LAST", "SEP"]

SEP = "\x1f"
#: Sorts after every ``owner + SEP + key`` of the keys rules use (ids and labels): the end of a round of due timers.
LAST = "\U0010ffff"
