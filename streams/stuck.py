"""A watchdog for the states in which faust's consumer silently stops delivering input.

Two are left since the worker reads whole fetches itself (:mod:`streams.faust_internals`):

* a flow left suspended outside a rebalance (no fetch is processed while it
  is): resumed after two checks;
* a rebalance that does not end (no input meanwhile, and nothing here can end
  it): logged with the consumer's state (:func:`describe_consumer`) once a
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

__all__ = ["FlowWatchdog", "describe_consumer"]

log = logging.getLogger(__name__)


class FlowWatchdog:
    """Checks a faust app's consumer every so often: resumes a flow left suspended outside a rebalance (after two
    looks), and reports a rebalance that does not end."""

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
        """One look; returns how many faults were mended (0 or 1)."""
        app = self.app
        if app.rebalancing or app.should_stop or not app.tables.recovery.completed.is_set():
            self.suspected = False
            self._watch_rebalance(app.rebalancing and not app.should_stop)
            return 0
        self.rebalancing_since = None
        stopped = self._flow_stopped()
        lasting, self.suspected = stopped and self.suspected, stopped
        if not lasting:
            return 0
        log.warning("the consumer's flow is suspended outside a rebalance: resuming it; its state:\n%s", describe_consumer(app))
        app.flow_control.resume()
        app.consumer.resume_flow()
        self.suspected = False
        return 1

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


def describe_consumer(app: Any) -> str:
    """A faust consumer's flow and per-partition bookkeeping, and its Kafka client's group membership, for a
    stalled worker's dump: whether its flow is suspended, which partitions it fetches and from where, and how
    far each is read, committed and acknowledged."""
    consumer = app.consumer
    recovery = app.tables.recovery
    lines = [
        f"consumer: flow_active={consumer.flow_active} suspend_flow={consumer.suspend_flow.is_set()} "
        f"flow_control={app.flow_control.is_active()} rebalancing={app.rebalancing} "
        f"recovery_completed={recovery.completed.is_set()} in_recovery={recovery.in_recovery} "
        f"generation={app.consumer_generation_id} unacked={len(consumer._unacked_messages)}",
        f"paused: {sorted(map(str, consumer._paused_partitions))}",
        f"buffered: {sorted(map(str, consumer._buffered_partitions))}",
    ]
    client = getattr(getattr(consumer, "_thread", None), "_consumer", None)
    coordinator = getattr(client, "_coordinator", None)
    positions: dict[tuple[str, int], Any] = {}
    if coordinator is not None:
        subscription = client._subscription.subscription
        assignment = subscription.assignment if subscription is not None else None
        lines.append(
            f"kafka client: coordinator={coordinator.coordinator_id} generation={coordinator.generation} "
            f"member={coordinator.member_id!r} rejoin_needed={coordinator._rejoin_needed_fut.done()} "
            f"assigned={'none' if assignment is None else len(assignment.tps)} "
            f"join_prepared={getattr(coordinator, '_performed_join_prepare', '?')} "
            f"coordination_task={_task_state(getattr(coordinator, '_coordination_task', None))}"
        )
        if assignment is not None:
            for ktp in assignment.tps:
                state = assignment.state_value(ktp)
                positions[(ktp.topic, ktp.partition)] = state._position if state is not None else None
    active = consumer._active_partitions or set()
    routed = app.topics._tp_index
    for tp in sorted(consumer.assignment()):
        lines.append(
            f"{tp.topic}[{tp.partition}]: active={tp in active} routed={len(routed.get(tp, ()))} "
            f"read={consumer._read_offset.get(tp)} committed={consumer._committed_offset.get(tp)} "
            f"acked={len(consumer._acked.get(tp, ()))} highwater={consumer.highwater(tp)} "
            f"fetch_position={positions.get((tp.topic, tp.partition))}"
        )
    return "\n".join(lines)


def _task_state(task: Any) -> str:
    """``running``, ``done``, or how it ended: a coordinator task that died leaves the group unjoined for good."""
    if task is None:
        return "none"
    if not task.done():
        return "running"
    if task.cancelled():
        return "cancelled"
    return f"failed: {task.exception()!r}" if task.exception() is not None else "done"
