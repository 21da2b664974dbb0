"""``bench/reading_order.py``: the alerts in the file's order against each hour read one partition after another."""

from __future__ import annotations

import json
from pathlib import Path

from bench.reading_order import alert_rows, hour_by_partition
from streams.partitioning import partition_for
from tests.unit.test_hot_words_rule import FEW_CANDIDATES_RULE, many_terms_complaints


def test_each_hour_is_read_one_partition_after_another_each_partitions_own_in_order() -> None:
    events = many_terms_complaints(hours=3)
    lines = [json.dumps(e, ensure_ascii=False).encode() for e in events]
    moved = [json.loads(line) for line in hour_by_partition(lines)]
    assert sorted(e["event_id"] for e in moved) == sorted(e["event_id"] for e in events) and moved != events
    hours = [e["complaint_id"].split("-")[1] for e in moved]
    assert hours == sorted(hours, key=int)  # hours in order
    for p in range(8):
        mine = [e["event_id"] for e in events if partition_for(e["customer_id"], 8) == p]
        assert [e["event_id"] for e in moved if partition_for(e["customer_id"], 8) == p] == mine


def test_a_hot_word_window_of_more_terms_than_candidates_gives_the_same_rows_in_both_orders(tmp_path: Path) -> None:
    """The case that differed while windows kept a streaming summary of their terms (an alert resolved an hour later
    and named other terms)."""
    (tmp_path / "hot.yaml").write_text(FEW_CANDIDATES_RULE, encoding="utf-8")
    lines = [json.dumps(e, ensure_ascii=False).encode() for e in many_terms_complaints()]
    in_order = alert_rows(lines, tmp_path)
    assert any("多扣费" in row for row in in_order)  # the premise: the burst is found
    assert alert_rows(hour_by_partition(lines), tmp_path) == in_order
