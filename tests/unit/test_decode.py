"""Decoding per the wire contract; every rejection is a dead letter with a reason naming the field."""

from __future__ import annotations

import json
from pathlib import Path

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.decode import REASONS, DeadLetter, Decoder
from yujing.events import BillEvent, ComplaintEvent, OrderEvent

CONTRACT = Path(__file__).resolve().parents[2] / "docs" / "contracts" / "events.md"
TOPICS = {"orders": "orders", "billing": "billing", "complaints": "complaints"}
GOOD_ORDER = {
    "event_id": "o-1",
    "event_type": "order.created",
    "ts": "2026-03-01T09:00:00+08:00",
    "customer_id": "c-1001",
    "region": "台州",
    "product": "宽带",
    "channel": "营业厅",
    "tier": "gold",
    "order_id": "ord-77",
    "plan_id": "BB-300M",
    "monthly_fee": 129,
}


def dec() -> Decoder:
    return Decoder(TOPICS)


def contract_examples() -> list[dict]:
    text = CONTRACT.read_text(encoding="utf-8") if CONTRACT.exists() else ""
    block = text.split("```json")[1].split("```")[0] if "```json" in text else ""
    return [json.loads(line) for line in block.splitlines() if line.strip()]


def test_the_contract_examples_decode() -> None:
    examples = contract_examples()
    if not examples:
        pytest.fail(f"contract examples not found at {CONTRACT}")
    topic = {"order": "orders", "bill": "billing", "complaint": "complaints"}
    for ex in examples:
        ev = dec().decode(topic[ex["event_type"].split(".")[0]], 0, 0, ex["customer_id"].encode(), json.dumps(ex).encode())
        assert isinstance(ev, OrderEvent | BillEvent | ComplaintEvent), ev


def test_unknown_top_level_fields_are_ignored() -> None:
    ev = dec().decode("orders", 0, 0, None, json.dumps({**GOOD_ORDER, "new_upstream_field": [1, 2]}).encode())
    assert isinstance(ev, OrderEvent) and ev.order_id == "ord-77"


@pytest.mark.parametrize(
    ("topic", "change", "category", "field"),
    [
        ("orders", {"order_id": None}, "missing_field", "order_id"),
        ("orders", {"order_id": 5}, "wrong_type", "order_id"),
        ("orders", {"event_type": "bill.issued"}, "unknown_event_type", "event_type"),
        ("orders", {"event_type": "order.exploded"}, "unknown_event_type", "event_type"),
        ("orders", {"ts": "2026-03-01T09:00:00"}, "invalid_value", "ts"),
        ("orders", {"ts": "yesterday"}, "invalid_value", "ts"),
        ("orders", {"monthly_fee": -1}, "invalid_value", "monthly_fee"),
        ("orders", {"tier": "diamond"}, "invalid_value", "tier"),
        ("orders", {"customer_id": ""}, "invalid_value", "customer_id"),
        ("orders", {"event_id": "x" * 129}, "too_long", "event_id"),
        ("orders", {"attrs": {"a": [1]}}, "wrong_type", "attrs"),
        ("orders", {"promised_at": 5}, "wrong_type", "promised_at"),
    ],
)
def test_bad_fields_are_named(topic: str, change: dict, category: str, field: str) -> None:
    data = {k: v for k, v in {**GOOD_ORDER, **change}.items() if v is not None}
    letter = dec().decode(topic, 3, 42, None, json.dumps(data).encode())
    assert isinstance(letter, DeadLetter)
    assert (letter.category, letter.field, letter.partition, letter.offset) == (category, field, 3, 42)
    assert field.split(".")[0] in letter.reason
    assert letter.category in REASONS


def test_complaint_text_is_required_on_opened_only_and_bounded() -> None:
    base = {"event_id": "k", "ts": "2026-03-01T09:00:00Z", "customer_id": "c", "complaint_id": "cp"}
    d = dec()
    opened = d.decode("complaints", 0, 0, None, json.dumps({**base, "event_type": "complaint.opened"}).encode())
    assert isinstance(opened, DeadLetter) and (opened.category, opened.field) == ("missing_field", "text")
    assert isinstance(d.decode("complaints", 0, 0, None, json.dumps({**base, "event_type": "complaint.closed"}).encode()), ComplaintEvent)
    huge = d.decode("complaints", 0, 0, None, json.dumps({**base, "event_type": "complaint.opened", "text": "断" * 1_000_000}).encode())
    assert isinstance(huge, DeadLetter) and (huge.category, huge.field) == ("too_long", "text")


def test_billing_cycle_and_items_are_checked() -> None:
    base = {"event_id": "b", "event_type": "bill.issued", "ts": "2026-03-01T09:00:00Z", "customer_id": "c", "bill_id": "b1", "amount": 1}
    d = dec()
    assert d.decode("billing", 0, 0, None, json.dumps({**base, "cycle": "2026-13"}).encode()).field == "cycle"
    bad_item = d.decode("billing", 0, 0, None, json.dumps({**base, "cycle": "2026-03", "items": [{"code": "x"}]}).encode())
    assert isinstance(bad_item, DeadLetter) and bad_item.category == "missing_field"


@pytest.mark.parametrize(
    ("raw", "category"),
    [
        (b"", "invalid_json"),
        (b"{", "invalid_json"),
        (b"not json", "invalid_json"),
        (b"[1,2]", "not_an_object"),
        (b"\xff\xfe{}", "invalid_utf8"),
        (b'{"event_id":"\xc3\x28"}', "invalid_utf8"),
    ],
)
def test_malformed_bytes(raw: bytes, category: str) -> None:
    letter = dec().decode("orders", 0, 0, None, raw)
    assert isinstance(letter, DeadLetter) and letter.category == category and letter.value == raw


def test_key_must_equal_customer_id() -> None:
    letter = dec().decode("orders", 0, 0, b"someone-else", json.dumps(GOOD_ORDER).encode())
    assert isinstance(letter, DeadLetter) and (letter.category, letter.field) == ("key_mismatch", "customer_id")


def test_dead_letter_record_keeps_the_original_bytes() -> None:
    raw = b"\xff not utf8"
    record = dec().decode("orders", 1, 9, None, raw).to_json_record()
    import base64

    assert base64.b64decode(record["original_base64"]) == raw
    assert (record["topic"], record["partition"], record["offset"]) == ("orders", 1, 9)
    text_record = dec().decode("orders", 1, 9, None, b"{oops").to_json_record()
    assert text_record["original"] == "{oops"


def test_topic_is_inferred_for_files() -> None:
    d = dec()
    assert d.infer_topic(json.dumps(GOOD_ORDER).encode()) == "orders"
    assert d.infer_topic(b'{"event_type": "weird"}') == ""
    letter = d.decode("", 0, 0, None, b'{"event_type": "weird"}')
    assert isinstance(letter, DeadLetter) and letter.category == "unknown_event_type"


@settings(max_examples=300, deadline=None)
@given(raw=st.binary(max_size=300) | st.text(max_size=200).map(str.encode))
def test_decoder_never_raises_on_arbitrary_bytes(raw: bytes) -> None:
    result = dec().decode("complaints", 0, 0, None, raw)
    assert isinstance(result, ComplaintEvent) or (isinstance(result, DeadLetter) and result.reason and result.category in REASONS)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=10),
    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=8), c, max_size=3),
    max_leaves=8,
)


@settings(max_examples=300, deadline=None)
@given(mutation=st.dictionaries(st.sampled_from([*GOOD_ORDER, "attrs", "promised_at"]), json_values, max_size=3))
def test_mutated_events_are_decoded_or_rejected_with_a_reason(mutation: dict) -> None:
    raw = msgspec.json.encode({**GOOD_ORDER, **mutation})
    result = dec().decode("orders", 0, 0, None, raw)
    assert isinstance(result, OrderEvent) or (isinstance(result, DeadLetter) and result.category in REASONS and result.reason)


records = st.tuples(
    st.sampled_from(["orders", "billing", "complaints", "", "elsewhere"]),
    st.integers(0, 7),
    st.integers(0, 10**6),
    st.sampled_from([None, b"c-1001", b"c-2"]),
    st.none()
    | st.binary(max_size=40)
    | st.dictionaries(st.sampled_from([*GOOD_ORDER, "attrs"]), json_values, max_size=2).map(
        lambda mutation: msgspec.json.encode({**GOOD_ORDER, **mutation})
    ),
)


@settings(max_examples=300, deadline=None)
@given(batch=st.lists(records, max_size=12))
def test_a_batch_decodes_as_its_records_do_one_by_one(batch: list[tuple[str, int, int, bytes | None, bytes | None]]) -> None:
    """``decode_many``, the runners' one loop over a batch, gives what ``decode`` gives record by record: the same
    events in order with their partitions, and the same dead letters."""
    decoder = dec()
    one_by_one = [(decoder.decode(*record), record[1]) for record in batch]
    events, placed, dead = decoder.decode_many(batch)
    assert list(zip(events, placed, strict=True)) == [(r, p) for r, p in one_by_one if not isinstance(r, DeadLetter)]
    assert dead == [r for r, _ in one_by_one if isinstance(r, DeadLetter)]


SCHEMA = CONTRACT.with_name("events.schema.json")


def test_the_contract_examples_and_the_simulators_events_meet_the_json_schema_copy() -> None:
    """The repository's copy of the upstream JSON Schema accepts what the decoder accepts: the
    contract's examples and a simulated day (what the demo and the tests feed the engine)."""
    import jsonschema

    from streams.simulator.generator import SimConfig, simulate

    validator = jsonschema.Draft202012Validator(json.loads(SCHEMA.read_text(encoding="utf-8")))
    events = [*contract_examples(), *simulate(SimConfig(seed=5, days=0.5, history_days=0.5, customers=300)).events]
    assert len(events) > 100
    for event in events:
        errors = [e.message for e in validator.iter_errors(event)]
        assert not errors, (event, errors)
        topic = {"order": "orders", "bill": "billing", "refund": "billing", "complaint": "complaints"}[event["event_type"].split(".")[0]]
        assert not isinstance(dec().decode(topic, 0, 0, None, json.dumps(event).encode()), DeadLetter), event
