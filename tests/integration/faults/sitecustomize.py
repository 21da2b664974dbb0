"""Faults injected into a worker child process (on its ``PYTHONPATH`` only in the tests that ask for them).

``YUJING_TEST_FAIL_ASSIGNMENT_AFTER=PATH``: the first time faust's partition assignor runs in this process
after the file ``PATH`` exists, it raises a bare ``AssertionError``, as faust's own assertions did in CI when
the group leader's metadata missed a topic right after a broker restart. aiokafka hands that to the consumer
as ``KafkaError('AssertionError()')``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

_MARKER = os.environ.get("YUJING_TEST_FAIL_ASSIGNMENT_AFTER", "")

if _MARKER:
    from faust.assignor.partition_assignor import PartitionAssignor

    _assign = PartitionAssignor.assign
    _failed = False

    def _failing_assign(self: Any, cluster: Any, member_metadata: Any) -> Any:
        global _failed
        if not _failed and Path(_MARKER).exists():
            _failed = True
            print("yujing test fault: this assignment fails", flush=True)
            raise AssertionError
        return _assign(self, cluster, member_metadata)

    PartitionAssignor.assign = _failing_assign  # type: ignore[method-assign]
