"""``kill -USR1`` on a worker: every asyncio task with the await it is parked on, innermost frame included."""

from __future__ import annotations

import asyncio
import io
import os
import signal
import sys

from streams.taskdump import install_task_dump, write_task_stacks


async def _parked_deep_inside(ready: asyncio.Event) -> None:
    await _one_level_down(ready)


async def _one_level_down(ready: asyncio.Event) -> None:
    await ready.wait()


def test_the_dump_follows_each_task_down_to_the_await_it_is_parked_on() -> None:
    async def main() -> str:
        ready = asyncio.Event()
        task = asyncio.create_task(_parked_deep_inside(ready), name="parked")
        await asyncio.sleep(0)
        out = io.StringIO()
        write_task_stacks(out)
        ready.set()
        await task
        return out.getvalue()

    dump = asyncio.run(main())
    lines = dump[dump.index("task parked:") :].splitlines()[1:]
    frames = [line.rsplit(" in ", 1)[1] for line in lines[: next(i for i, line in enumerate(lines) if not line.startswith("  "))]]
    assert frames == ["_parked_deep_inside", "_one_level_down", "wait"], dump
    assert dump.rstrip().endswith("--- end of asyncio tasks ---")


def test_sigusr1_writes_the_dump_to_stderr(capfd) -> None:  # type: ignore[no-untyped-def]
    async def main() -> None:
        install_task_dump(asyncio.get_running_loop())
        os.kill(os.getpid(), signal.SIGUSR1)
        await asyncio.sleep(0.1)  # the handler runs in the loop
        asyncio.get_running_loop().remove_signal_handler(signal.SIGUSR1)

    asyncio.run(main())
    sys.stderr.flush()
    assert "--- asyncio tasks:" in capfd.readouterr().err


def test_the_dump_starts_with_what_the_process_says_of_itself_even_when_that_fails() -> None:
    async def main(describe) -> str:  # type: ignore[no-untyped-def]
        out = io.StringIO()
        write_task_stacks(out, describe)
        return out.getvalue()

    said = asyncio.run(main(lambda: "consumer: flow_active=True"))
    first_lines = said.splitlines()[:2]
    assert first_lines[0].startswith("--- asyncio tasks:") and first_lines[1] == "consumer: flow_active=True", said
    assert said.rstrip().endswith("--- end of asyncio tasks ---"), said

    def broken() -> str:
        raise KeyError("gone")

    failed = asyncio.run(main(broken))
    assert failed.splitlines()[1] == "(could not describe: KeyError('gone'))" and failed.rstrip().endswith("--- end of asyncio tasks ---")
