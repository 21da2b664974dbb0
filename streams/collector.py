"""Python's cyclic garbage collector, tuned for a stream processor.

Rules keep their state in millions of small objects that never form cycles (msgspec structs,
strings, lists). With the interpreter's defaults (a young collection every 700 allocations)
the collector walks them again and again: on the peers' three rules it took about a sixth
of the engine's CPU time (``bench`` and BENCHMARKS.md), and collected nothing of use.
Here, as in long-running services that do the same (Instagram's ``gc.freeze``):

* in a finite run, what exists when it starts (modules, compiled rules) is frozen:
  never scanned again;
* a young collection runs every ``young`` allocations instead of 700, so fewer objects
  are promoted and the older generations are walked far less often.

Reference counting frees everything as before; only cycles wait a little longer.

>>> import gc
>>> before = gc.get_threshold()
>>> with few_collections():
...     gc.get_threshold()[0]
50000
>>> gc.get_threshold() == before
True
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["YOUNG", "collect_rarely", "few_collections"]

#: Allocations between young collections while a stream is processed.
YOUNG = 50_000


def collect_rarely(young: int = YOUNG) -> None:
    """For a process that processes streams until it stops (the worker): a young collection every ``young``
    allocations. Nothing is frozen: a worker replaces its Kafka clients on a rebalance, and their cycles must
    still be collected."""
    _, middle, old = gc.get_threshold()
    gc.set_threshold(young, middle, old)


@contextmanager
def few_collections(young: int = YOUNG) -> Iterator[None]:
    """For the length of one finite run (a backtest, in a process that may do more): what exists is frozen and
    young collections are rare; both are undone after."""
    threshold = gc.get_threshold()
    gc.freeze()
    collect_rarely(young)
    try:
        yield
    finally:
        gc.set_threshold(*threshold)
        gc.unfreeze()
