"""How simulated events reach the pipeline: in event-time order, or as the event contract allows.

The contract (docs/contracts/events.md) promises at-least-once delivery, with the events of a key out of order by
up to several minutes. Upstream systems built to it deliver that way, so a detector judged only on events in
perfect order is judged on data no operator has. :func:`arrival_order` makes the simulator's events arrive as
the contract allows: each some seconds after its event time, and a share of them twice.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import TypeVar

__all__ = ["arrival_order"]

T = TypeVar("T")


def arrival_order(
    events: Sequence[tuple[float, int, T]], rng: random.Random, disorder_seconds: float = 0.0, redeliver_share: float = 0.0
) -> list[T]:
    """``events`` (event time, sequence number, event) in the order a pipeline receives them: each arrives up to
    ``disorder_seconds`` after its event time, so their order differs within that bound, and each is delivered a
    second time with probability ``redeliver_share``, the copy with a delay of its own. Draws from ``rng`` only
    when asked to disorder or redeliver: a delay for each event, and with a share to redeliver a coin for each
    event and a delay for each copy (so the simulator's ``--disorder`` alone draws what it always drew).

    >>> events = [(0.0, 0, "a"), (10.0, 1, "b"), (20.0, 2, "c")]
    >>> arrival_order(events, random.Random(1))
    ['a', 'b', 'c']
    >>> arrival_order(events, random.Random(2), disorder_seconds=30.0)
    ['c', 'a', 'b']
    >>> sorted(arrival_order(events, random.Random(1), disorder_seconds=5.0, redeliver_share=1.0))
    ['a', 'a', 'b', 'b', 'c', 'c']
    """
    if disorder_seconds <= 0 and redeliver_share <= 0:
        return [event for _, _, event in sorted(events, key=lambda item: (item[0], item[1]))]
    arrivals: list[tuple[float, int, int, T]] = []
    for ts, n, event in events:
        arrivals.append((ts + rng.uniform(0, disorder_seconds), n, 0, event))
        if redeliver_share > 0 and rng.random() < redeliver_share:
            arrivals.append((ts + rng.uniform(0, disorder_seconds), n, 1, event))
    arrivals.sort(key=lambda item: (item[0], item[1], item[2]))
    return [event for _, _, _, event in arrivals]
