"""A local run collects cycles rarely while it runs, and gives the process its collector back as it was."""

from __future__ import annotations

import gc
import json

from streams.collector import YOUNG
from streams.engine import DictBackend, Engine, EngineConfig
from streams.local import LocalRunner
from tests.helpers import order


def test_a_local_run_collects_rarely_and_restores_the_collector() -> None:
    before, frozen = gc.get_threshold(), gc.get_freeze_count()
    seen: list[int] = []
    runner = LocalRunner.replaying(Engine([], DictBackend(), EngineConfig(idle_after=None)), [])
    lines = [json.dumps(order("created", minute, order_id=f"o{minute}")).encode() for minute in range(3)]
    runner.run(lines, on_batch=lambda stats, n: seen.append(gc.get_threshold()[0]))
    assert seen == [YOUNG]  # while it ran: a young collection every YOUNG allocations, not 700
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == frozen
