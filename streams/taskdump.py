"""What a running worker is waiting on: ``kill -USR1 <pid>`` writes every asyncio task's stack to stderr.

A stalled asyncio process shows nothing useful to a thread-stack dump (its one thread sits in ``select``);
the tasks' own stacks show which ``await`` each one is parked on.

    >>> import asyncio, io
    >>> async def main() -> str:
    ...     out = io.StringIO()
    ...     write_task_stacks(out)
    ...     return out.getvalue()
    >>> "asyncio tasks" in asyncio.run(main())
    True
"""

from __future__ import annotations

import asyncio
import signal
import sys
import traceback
from typing import TextIO

__all__ = ["install_task_dump", "write_task_stacks"]


def write_task_stacks(out: TextIO) -> None:
    """Every task of the running loop, each with the frames it is suspended in."""
    tasks = asyncio.all_tasks()
    out.write(f"--- asyncio tasks: {len(tasks)} ---\n")
    for task in sorted(tasks, key=lambda t: t.get_name()):
        out.write(f"task {task.get_name()} ({task.get_coro()!r}):\n")
        for frame in task.get_stack(limit=12):
            out.write("".join(traceback.format_stack(frame, limit=1)))
    out.write("--- end of asyncio tasks ---\n")
    out.flush()


def install_task_dump(loop: asyncio.AbstractEventLoop, sig: int = signal.SIGUSR1) -> None:
    """Dump the tasks' stacks to stderr whenever ``sig`` arrives (SIGUSR1 by default)."""
    loop.add_signal_handler(sig, write_task_stacks, sys.stderr)
