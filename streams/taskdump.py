"""What a running worker is waiting on: ``kill -USR1 <pid>`` writes every asyncio task's stack to stderr.

A stalled asyncio process shows nothing useful to a thread-stack dump (its one thread sits in ``select``);
the tasks' own stacks show which ``await`` each one is parked on.

    >>> import asyncio, io
    >>> async def parked(ready: asyncio.Event) -> None:
    ...     await ready.wait()
    >>> async def main() -> str:
    ...     ready = asyncio.Event()
    ...     task = asyncio.create_task(parked(ready))
    ...     await asyncio.sleep(0)
    ...     out = io.StringIO()
    ...     write_task_stacks(out)
    ...     ready.set()
    ...     await task
    ...     return out.getvalue()
    >>> dump = asyncio.run(main())
    >>> "in parked" in dump and "in wait" in dump  # the task's coroutine and the await it is parked on
    True
"""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import Callable
from types import FrameType
from typing import Any, TextIO

__all__ = ["DUMP_END", "DUMP_START", "install_task_dump", "write_task_stacks"]

DUMP_START = "--- asyncio tasks:"  # followed by the task count
DUMP_END = "--- end of asyncio tasks ---"


def awaited_frames(coro: Any, limit: int = 40) -> list[FrameType]:
    """The frames of a suspended coroutine and of what it awaits, outermost first (``Task.get_stack`` gives only
    the outermost: a suspended coroutine's frame has no ``f_back`` to the one it awaits)."""
    frames: list[FrameType] = []
    while coro is not None and len(frames) < limit:
        if isinstance(coro, asyncio.Task):  # awaiting another task: follow into its coroutine
            coro = coro.get_coro()
        frame = getattr(coro, "cr_frame", None) or getattr(coro, "gi_frame", None) or getattr(coro, "ag_frame", None)
        if frame is None:
            break
        frames.append(frame)
        coro = getattr(coro, "cr_await", None) or getattr(coro, "gi_yieldfrom", None) or getattr(coro, "ag_await", None)
    return frames


def write_task_stacks(out: TextIO, describe: Callable[[], str] | None = None) -> None:
    """What ``describe`` says of the process (the worker: its consumer's flow and partitions), then every task
    of the running loop, each with the frames it is suspended in, innermost last."""
    tasks = asyncio.all_tasks()
    out.write(f"{DUMP_START} {len(tasks)} ---\n")
    if describe is not None:  # first: it is short, and says more than the stacks
        try:
            out.write(describe() + "\n")
        except Exception as exc:  # a dump must not fail for want of a detail
            out.write(f"(could not describe: {exc!r})\n")
    for task in sorted(tasks, key=lambda t: t.get_name()):
        out.write(f"task {task.get_name()}:\n")
        for frame in awaited_frames(task.get_coro()):
            out.write(f"  {frame.f_code.co_filename}:{frame.f_lineno} in {frame.f_code.co_name}\n")
    out.write(DUMP_END + "\n")
    out.flush()


def install_task_dump(loop: asyncio.AbstractEventLoop, sig: int = signal.SIGUSR1, describe: Callable[[], str] | None = None) -> None:
    """Dump the tasks' stacks (and what ``describe`` says) to stderr whenever ``sig`` arrives (SIGUSR1 by default)."""
    loop.add_signal_handler(sig, write_task_stacks, sys.stderr, describe)
