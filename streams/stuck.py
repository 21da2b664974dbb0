"""A watchdog for the states in which faust's consumer silently stops delivering an input partition.

faust reads a message before it hands it on, and throws it away, its read
offset already moved past it, when the hand-over cannot happen: the flow is
suspended (a rebalance), or no stream is routed for the partition. Its
re-fetch of those offsets is then dropped as already read, and the partition
delivers nothing more until new messages arrive, or ever. Seen here:

* a restarted worker that never processed the tail of some partitions
  (a fetch in flight across faust's seek after a rebalance);
* a worker started right after another was killed that came out of recovery
  with no read and no committed offset for any partition and fetched nothing,
  though the partitions held unread messages;
* a worker whose broker restarted that read every partition to its end, again
  and again after each seek, and delivered none of it (CI; the dump of that
  state is what :func:`describe_consumer` writes).

The worker's own input positions (:mod:`streams.positions`, kept in state) say
where each partition's unprocessed messages start: ``resume``. A partition is
stuck when nothing of it is pending or queued for the stream, and faust has
read past ``resume`` (``read > resume``), or has not read past it though the
broker holds messages beyond it (``highwater > resume`` and ``read`` is
``None`` or ``resume``), unchanged over two checks (a healthy partition
delivers what it read within a check). It is sought to ``resume``, or to its
committed offset if that is lower; anything delivered twice is skipped by the
positions. A flow left suspended outside a
rebalance is resumed, and a partition without a route gets its route back,
each after two checks too. A rebalance that lasts a minute is logged with the
consumer's state (nothing here can end it).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Hashable
from typing import Any

__all__ = ["StuckPartitionWatchdog", "describe_consumer"]

log = logging.getLogger(__name__)


class StuckPartitionWatchdog:
    """Checks a faust app's input partitions every so often and mends the ones faust stopped delivering.

    ``is_input(tp)`` says which partitions are streams the worker reads (not changelogs), ``next_offset(tp)``
    where its state says the partition's unprocessed messages start (``None``: never read).
    """

    def __init__(
        self,
        app: Any,
        is_input: Callable[[Any], bool],
        next_offset: Callable[[Any], int | None],
        long_rebalance: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.app = app
        self.is_input = is_input
        self.next_offset = next_offset
        self.long_rebalance = long_rebalance
        self.clock = clock
        self.suspects: dict[Hashable, tuple[Any, ...]] = {}
        self.rebalancing_since: float | None = None
        self.reported_at = 0.0

    def _resume(self, tp: Any) -> int:
        stored = self.next_offset(tp)
        if stored is not None:
            return stored
        return self.app.consumer._committed_offset.get(tp) or 0

    def _faults(self) -> dict[Hashable, tuple[Any, ...]]:
        """Every fault seen now, keyed by what it is about, with the state that makes it one."""
        app, consumer = self.app, self.app.consumer
        faults: dict[Hashable, tuple[Any, ...]] = {}
        if consumer.suspend_flow.is_set() or not app.flow_control.is_active():
            faults["flow"] = ()
        routes = app.topics._tp_index
        pending = {m.tp for m in list(consumer._unacked_messages)}
        for tp in consumer.assignment():
            if not self.is_input(tp):
                continue
            channels = routes.get(tp)
            if not channels:
                faults[("route", tp)] = ()
                continue
            if tp in pending or any(channel.queue.qsize() for channel in channels):
                continue
            resume = self._resume(tp)
            read = consumer._read_offset.get(tp)
            highwater = consumer.highwater(tp)
            unread = highwater is not None and highwater > resume
            if (read is not None and read > resume) or (unread and (read is None or read == resume)):
                faults[("partition", tp)] = (read, resume, highwater)
        return faults

    async def check(self) -> int:
        """One look; returns how many faults were mended."""
        app = self.app
        if app.rebalancing or app.should_stop or not app.tables.recovery.completed.is_set():
            self.suspects = {}
            self._watch_rebalance(app.rebalancing and not app.should_stop)
            return 0
        self.rebalancing_since = None
        now = self._faults()
        lasting = {key: state for key, state in now.items() if self.suspects.get(key) == state}
        self.suspects = now
        if not lasting:
            return 0
        log.warning("faust stopped delivering input; the consumer's state:\n%s", describe_consumer(app))
        for key in lasting:
            await self._mend(key, lasting[key])
            self.suspects.pop(key, None)
        return len(lasting)

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

    async def _mend(self, key: Hashable, state: tuple[Any, ...]) -> None:
        app, consumer = self.app, self.app.consumer
        if key == "flow":
            log.warning("the consumer's flow is suspended outside a rebalance: resuming it")
            app.flow_control.resume()
            consumer.resume_flow()
            return
        kind, tp = key  # type: ignore[misc]
        if kind == "route":
            log.warning("partition %s is assigned but routed to no stream: routing the assignment again", tp)
            await app.topics.on_partitions_assigned(set(consumer.assignment()))
            return
        read, resume, highwater = state
        # Not past the commit: faust commits only up to the first offset it never acknowledged, so offsets skipped
        # by a seek would stop its commits for good. What is read again below ``resume`` is skipped as a duplicate.
        committed = consumer._committed_offset.get(tp)
        to = resume if committed is None else min(resume, committed)
        log.warning("partition %s read to %s, high water %s, not delivered from %s: seeking it to %s", tp, read, highwater, resume, to)
        await consumer.seek(tp, to)


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
