"""A watchdog for the states in which faust's consumer silently stops delivering input.

Three are left since the worker reads whole fetches itself (:mod:`streams.faust_internals`):

* a flow left suspended outside a rebalance (no fetch is processed while it
  is): resumed after two checks;
* a group error nobody takes (the Kafka client's coordinator waits for it
  before it joins the group again): taken
  (:func:`streams.faust_internals.take_group_error`);
* a rebalance that does not end (no input meanwhile, and nothing here can end
  it): logged with the consumer's state
  (:func:`streams.faust_internals.describe_consumer`) once a
  minute.

faust's per-message stream also dropped messages it had read when their
hand-over could not happen (a suspended flow, a partition without a route), its
read offset already past them, and partitions then delivered nothing more; the
watchdog used to seek such partitions back. The worker no longer reads through
that stream: a fetch goes to the batch handler whole or, when a rebalance
overtook it, not at all (faust seeks again, and the input positions in state
skip what was seen), so those checks, which mistook a partition waiting for its
first fetch for a stuck one, are gone.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from streams.faust_internals import describe_consumer, take_group_error

__all__ = ["FlowWatchdog"]

log = logging.getLogger(__name__)


class FlowWatchdog:
    """Checks a faust app's consumer every so often: takes a group error the Kafka client waits for someone to
    take, resumes a flow left suspended outside a rebalance (after two looks), and reports a rebalance that does
    not end."""

    def __init__(self, app: Any, long_rebalance: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.app = app
        self.long_rebalance = long_rebalance
        self.clock = clock
        self.suspected = False
        self.rebalancing_since: float | None = None
        self.reported_at = 0.0

    def _flow_stopped(self) -> bool:
        return self.app.consumer.suspend_flow.is_set() or not self.app.flow_control.is_active()

    async def check(self) -> int:
        """One look; returns how many faults were mended (0 to 2)."""
        app = self.app
        taken = 0 if app.should_stop else int(await take_group_error(app.consumer) is not None)
        if app.rebalancing or app.should_stop or not app.tables.recovery.completed.is_set():
            self.suspected = False
            self._watch_rebalance(app.rebalancing and not app.should_stop)
            return taken
        self.rebalancing_since = None
        stopped = self._flow_stopped()
        lasting, self.suspected = stopped and self.suspected, stopped
        if not lasting:
            return taken
        log.warning("the consumer's flow is suspended outside a rebalance: resuming it; its state:\n%s", describe_consumer(app))
        app.flow_control.resume()
        app.consumer.resume_flow()
        self.suspected = False
        return taken + 1

    def _watch_rebalance(self, rebalancing: bool) -> None:
        """A rebalance that does not end stops all input, and nothing here can mend it: say so, with the
        consumer's state, once ``long_rebalance`` seconds have passed and every ``long_rebalance`` after."""
        now = self.clock()
        if not rebalancing:
            self.rebalancing_since = None
            return
        if self.rebalancing_since is None:
            self.rebalancing_since = now
        elif now - self.rebalancing_since >= self.long_rebalance and now - self.reported_at >= self.long_rebalance:
            self.reported_at = now
            state = describe_consumer(self.app)
            log.warning("rebalancing for %.0f s, no input meanwhile; the consumer's state:\n%s", now - self.rebalancing_since, state)
