"""Liveness and readiness, as ``/healthz`` and ``/readyz`` answer them.

*Live* means the process still does its work: a runner calls :meth:`Health.beat`
from its loop (the worker from a timer on its event loop), and a beat older
than ``stale_after`` seconds means the loop is blocked or dead, so an
orchestrator should restart it. *Ready* means it is live and every readiness
check passes: rules are loaded, state is recovered, input is assigned. A check
returns ``None`` when it is fine, else a short reason shown in the answer.

>>> now = [0.0]
>>> health = Health(stale_after=30, clock=lambda: now[0])
>>> health.add_check("rules", lambda: None)
>>> health.live(), health.ready()
((True, 'live'), (True, 'ready'))
>>> health.beat(); now[0] = 31.0
>>> health.live()
(False, 'no heartbeat for 31 s (the event loop is blocked or stopped)')
"""

from __future__ import annotations

import time
from collections.abc import Callable

__all__ = ["Health"]


class Health:
    """Heartbeat and named readiness checks of one process (see the module's docs)."""

    def __init__(self, stale_after: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.stale_after = stale_after
        self.clock = clock
        self.last_beat: float | None = None  # None: this runner does not beat (the local runner, the demo)
        self.checks: dict[str, Callable[[], str | None]] = {}

    def beat(self) -> None:
        self.last_beat = self.clock()

    def add_check(self, name: str, check: Callable[[], str | None]) -> None:
        self.checks[name] = check

    def live(self) -> tuple[bool, str]:
        if self.last_beat is not None:
            age = self.clock() - self.last_beat
            if age > self.stale_after:
                return False, f"no heartbeat for {age:.0f} s (the event loop is blocked or stopped)"
        return True, "live"

    def ready(self) -> tuple[bool, str]:
        live, why = self.live()
        if not live:
            return False, why
        reasons = []
        for name, check in self.checks.items():
            try:
                reason = check()
            except Exception as exc:  # a check that cannot tell is a not-ready, with its reason
                reason = f"check failed: {exc!r}"
            if reason:
                reasons.append(f"{name}: {reason}")
        return (False, "; ".join(reasons)) if reasons else (True, "ready")
