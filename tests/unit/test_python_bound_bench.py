"""``bench/python_bound.py``: the least the peers' three rules can cost in Python counts what the rules count."""

from __future__ import annotations

import json

from bench.python_bound import run
from tests.helpers import bill, complaint, order


def test_the_lean_rules_count_what_the_three_peer_rules_count() -> None:
    """(a) a customer's third complaint within 24 h (not one a day later), (b) the fourth complaint of a region ×
    product in a 10-minute bucket (not four spread over two buckets), (c) a first bill above 1.2 × the order's fee
    (not one at 1.1 ×, nor a later bill)."""
    events = [
        order("created", 0, order_id="o-1", customer="c-1", monthly_fee=100.0),
        order("created", 0, order_id="o-2", customer="c-2", monthly_fee=100.0),
        bill(1, bill_id="b-1", customer="c-1", amount=130.0, is_first_bill=True, order_id="o-1"),
        bill(1, bill_id="b-2", customer="c-2", amount=110.0, is_first_bill=True, order_id="o-2"),
        bill(2, bill_id="b-3", customer="c-1", amount=300.0, is_first_bill=False, order_id="o-1"),
        *[complaint("opened", m, complaint_id=f"k{m}", customer="c-3", product="宽带") for m in (10, 11, 12)],  # (a), (b) 3
        complaint("opened", 13, complaint_id="k13", customer="c-4", product="宽带"),  # (b) the fourth in 10:10-10:20
        *[complaint("opened", m, complaint_id=f"k{m}", customer=f"c-{m}", product="IPTV") for m in (15, 16, 25, 26)],
        *[complaint("opened", 60 * 24 * d, complaint_id=f"d{d}", customer="c-5", product="固话") for d in (1, 2, 3)],
    ]
    lines = [json.dumps(e, ensure_ascii=False).encode() for e in events]
    _, fired = run(lines, 3)
    assert fired == {"a": 1, "b": 1, "c": 1}
