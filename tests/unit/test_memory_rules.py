"""Rule types that compare an event with earlier ones of its key: ``compare``, ``change``, ``new_value``."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.engine import DictBackend, Engine, EngineConfig
from tests.helpers import (
    T0,
    CountingState,
    assert_arrival_order_and_replay_do_not_matter,
    bill,
    complaint,
    located_error,
    order,
    rules_from,
    run,
)

FIRST_BILL = """
    id: first-bill-above-promise
    type: compare
    title: 首月账单超出承诺资费
    severity: major
    key: order_id
    remember:
      on: order.created
      as: order
      fields: [monthly_fee, plan_id]
    check:
      on: bill.issued
      where: "is_first_bill and amount > 1.2 * order.monthly_fee"
    once: true
    summary: "客户 {customer_id} 首月账单 {amount} 元，承诺月费 {order.monthly_fee} 元"
"""

PLAN_CHANGE = """
    id: plan-changed
    type: change
    title: 套餐变更
    severity: info
    key: customer_id
    on: order.created
    field: plan_id
    summary: "客户 {customer_id} 套餐由 {previous} 改为 {plan_id}"
"""

NEW_CHANNEL = """
    id: new-channel
    type: new_value
    title: 新渠道
    severity: minor
    key: customer_id
    on: complaint.opened
    field: channel
    max_values: 2
    summary: "客户 {customer_id} 首次经 {channel} 投诉（此前 {previous}）"
"""


def first_bill(minutes: float, amount: float, bill_id: str = "b-1", order_id: str = "ord-1", **extra: object) -> dict:
    return bill(minutes, bill_id=bill_id, amount=amount, order_id=order_id, is_first_bill=True, **extra)


def test_first_bill_above_the_promised_fee_fires_once(tmp_path: Path) -> None:
    rules = rules_from(tmp_path, FIRST_BILL)
    events = [
        order("created", 0, monthly_fee=129, plan_id="BB-300M"),
        first_bill(100, 219.5),
        first_bill(200, 300, bill_id="b-2"),  # once: the first matching bill only
        order("created", 0, order_id="ord-2", monthly_fee=200),
        first_bill(100, 219.5, order_id="ord-2", bill_id="b-3"),  # within 1.2 × 200
    ]
    alerts = run(rules, events)
    assert len(alerts) == 1
    alert = alerts[0]
    assert alert.summary == "客户 c-1 首月账单 219.5 元，承诺月费 129 元"
    assert alert.evidence["remembered"] == {"monthly_fee": 129, "plan_id": "BB-300M"}
    assert (alert.starts_at - T0).total_seconds() == 6000


def test_a_bill_arriving_before_its_order_is_still_compared(tmp_path: Path) -> None:
    rules = rules_from(tmp_path, FIRST_BILL)
    # Arrival order: the bill first (3 minutes of upstream skew), event time: the order first.
    events = [first_bill(3, 219.5), order("created", 0, monthly_fee=129)]
    assert len(run(rules, events, lateness=300)) == 1


def test_no_memory_no_alert_and_missing_fields_are_null(tmp_path: Path) -> None:
    rules = rules_from(tmp_path, FIRST_BILL)
    assert run(rules, [first_bill(100, 999)]) == []
    assert run(rules, [order("created", 0), first_bill(100, 999)]) == []  # no monthly_fee: null, the test is false


def test_change_fires_on_a_different_value_only(tmp_path: Path) -> None:
    rules = rules_from(tmp_path, PLAN_CHANGE)
    events = [
        order("created", 0, order_id="o1", plan_id="A"),
        order("created", 10, order_id="o2", plan_id="A"),
        order("created", 20, order_id="o3", plan_id="B"),
        order("created", 30, order_id="o4"),  # no plan: ignored
    ]
    alerts = run(rules, events)
    assert [a.summary for a in alerts] == ["客户 c-1 套餐由 A 改为 B"]


def test_new_value_fires_on_never_seen_values_and_forgets_the_least_recent(tmp_path: Path) -> None:
    rules = rules_from(tmp_path, NEW_CHANNEL)
    channels = ["APP", "APP", "微信", "APP", "营业厅", "微信"]  # 营业厅 pushes 微信 out (max_values 2)
    events = [complaint("opened", i * 10, complaint_id=f"k{i}", channel=c) for i, c in enumerate(channels)]
    alerts = run(rules, events)
    assert [a.evidence["value"] for a in alerts] == ["微信", "营业厅", "微信"]


@pytest.mark.parametrize(
    ("rule", "change", "message"),
    [
        (FIRST_BILL, ("1.2 * order.monthly_fee", "1.2 * order.fee"), "`order.fee` is not remembered"),
        (FIRST_BILL, ("as: order", "as: amount"), "not an event field"),
        (FIRST_BILL, ("fields: [monthly_fee, plan_id]", "fields: [monthly_fees]"), "unknown field `monthly_fees`"),
        (FIRST_BILL, ("{order.monthly_fee} 元", "{order.plan} 元"), "placeholder {order.plan}"),
        (PLAN_CHANGE, ("field: plan_id", "field: plan"), "unknown field `plan`"),
        (NEW_CHANNEL, ("max_values: 2", "max_values: 0"), "at least 1"),
    ],
)
def test_bad_memory_rules_are_located(tmp_path: Path, rule: str, change: tuple[str, str], message: str) -> None:
    assert message in located_error(tmp_path, rule, change)


def _events(seed: int) -> list[dict]:
    rng = random.Random(seed)
    events = []
    for i in range(30):
        t = rng.uniform(0, 600)
        customer = f"c{rng.randrange(3)}"
        kind = rng.randrange(3)
        if kind == 0:
            events.append(order("created", t, order_id=f"o{customer}", customer=customer, monthly_fee=100, plan_id=rng.choice("AB")))
        elif kind == 1:
            events.append(first_bill(t, rng.choice([100, 130]), bill_id=f"b{i}", order_id=f"o{customer}", customer=customer))
        else:
            events.append(complaint("opened", t, complaint_id=f"k{i}", customer=customer, channel=rng.choice(["APP", "微信", "营业厅"])))
    events.sort(key=lambda e: e["ts"])
    return events


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 10_000), shuffle_seed=st.integers(0, 10_000), batch=st.integers(1, 6))
def test_shuffling_within_lateness_and_replaying_give_the_same_alerts(tmp_path_factory, seed: int, shuffle_seed: int, batch: int) -> None:
    rules = rules_from(tmp_path_factory.mktemp("r"), FIRST_BILL.replace("once: true", "once: false"), PLAN_CHANGE, NEW_CHANNEL)
    events = _events(seed)
    assert_arrival_order_and_replay_do_not_matter(rules, events, shuffle_seed, batch)


def test_a_batch_s_events_its_own_watermark_passes_are_never_stored_as_pending(tmp_path: Path) -> None:
    rules = rules_from(tmp_path, FIRST_BILL)
    # 40 orders and their first bills over 200 minutes, in one batch; lateness 5 minutes: at the batch's end the
    # watermark stands at 190 minutes (the orders' 195 less 5), so only what comes after it waits in state.
    events = []
    for i in range(40):
        events.append(order("created", 5 * i, order_id=f"o{i}", monthly_fee=100))
        events.append(first_bill(5 * i + 1, 150, bill_id=f"b{i}", order_id=f"o{i}"))
    backend = DictBackend()
    pending = backend.namespaces["cmp-pending:first-bill-above-promise"] = CountingState()
    engine = Engine(rules, backend, EngineConfig(allowed_lateness=300, idle_after=None))
    alerts = run([], events, engine=engine, batch=len(events), close=False)
    assert len(alerts) == 38  # o38's bill (191 min) and o39's order and bill are still ahead of the watermark
    assert len(pending.written) == 2  # stored once for each of the two keys
    assert len(run([], [], engine=engine)) == 2  # and compared at the end of the input


def test_held_and_stored_events_of_a_key_are_handled_once_each_in_event_time_order(tmp_path: Path) -> None:
    rules = rules_from(tmp_path, FIRST_BILL)
    rule = rules[0]
    handled: list[str] = []
    handle = rule.handle

    def recording(key, event, ts, ctx):  # type: ignore[no-untyped-def]
        handled.append(event.event_id)
        handle(key, event, ts, ctx)

    rule.handle = recording  # type: ignore[method-assign]
    engine = Engine(rules, DictBackend(), EngineConfig(allowed_lateness=300, idle_after=None))
    created = order("created", 10, monthly_fee=100)
    # Batch 1: the order, ahead of the watermark at the batch's end, is stored.
    run([], [order("created", 0, order_id="other"), created], engine=engine, batch=2, close=False)
    assert handled == ["created-other-0"]
    # Batch 2: the order again (a redelivery), its bill (held) and events that move the watermark past both.
    late_bill = first_bill(12, 150)
    moving = [order("created", 30, order_id="later"), first_bill(31, 50, bill_id="b-9", order_id="later")]
    alerts = run([], [late_bill, created, *moving], engine=engine, batch=4, close=False)
    assert handled == ["created-other-0", created["event_id"], late_bill["event_id"]]
    assert [a.labels["bill_id"] for a in alerts] == ["b-1"]


def test_after_a_restart_the_release_timers_of_many_waiting_keys_do_not_pile_up(tmp_path: Path) -> None:
    """After a restart each key still waiting has its own timer again (from its stored events), and each of them
    hands out the partition's due events. What comes after must still run on one release timer: the timers the
    stale ones left were set again at every later event, 40 of them firing at each one until the input ended."""
    backend = DictBackend()
    config = EngineConfig(allowed_lateness=300, idle_after=None)
    # 40 orders in the last five minutes of a batch: ahead of its watermark, they are stored, each with its timer.
    waiting = [order("created", 100 + i / 10, order_id=f"o{i}", monthly_fee=100) for i in range(40)]
    first = Engine(rules_from(tmp_path, FIRST_BILL), backend, config)
    run([], [order("created", 0, order_id="early", monthly_fee=100), *waiting], engine=first, batch=41, close=False)
    restarted = Engine(rules_from(tmp_path, FIRST_BILL), backend, config)  # new rule objects: nothing in memory
    assert restarted.recover() >= 40
    later = []
    for i in range(40):  # each order's first bill, and an order of another customer that moves event time on
        later += [first_bill(110 + 10 * i, 150, bill_id=f"b{i}", order_id=f"o{i}"), order("created", 110 + 10 * i, order_id=f"x{i}")]
    alerts = run([], later, engine=restarted, batch=1, close=False)
    assert len(alerts) == 39  # the last bill is ahead of the watermark still
    buffer = restarted.rules[0].buffer  # type: ignore[attr-defined]
    assert sum(1 for _, k in restarted.timers.pending_keys() if buffer.key_of_timer(k) is not None) <= 2
