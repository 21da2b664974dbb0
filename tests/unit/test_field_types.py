"""Conditions are checked against the event contract when a rule loads: fields the events lack, text compared with
numbers, enum values that do not exist, are located errors instead of rules that silently never match."""

from __future__ import annotations

from pathlib import Path

import pytest

from rules.loader import load_rule_text
from tests.helpers import MATCH_RULE, SLA_RULE, located_error
from tests.unit.test_memory_rules import FIRST_BILL

WHERE = 'where: {text: {contains_any: [工信部, "315"]}}'
BILLS = MATCH_RULE.replace("on: complaint.opened", "on: bill.issued").replace("key: complaint_id", "key: bill_id")


@pytest.mark.parametrize(
    ("rule", "where", "message"),
    [
        # the three: a field bills lack, a tier that does not exist, a length compared with text
        (BILLS, "where: 'text > 5'", "bill.issued events have no field `text` (complaint events have it)"),
        (MATCH_RULE, "where: 'tier == \"golden\"'", "'golden' is never a value here: one of gold, platinum"),
        (MATCH_RULE, "where: 'len(text) > \"5\"'", "`>` compares a number with text"),
        # and their kin, in expressions and in mappings
        (BILLS, "where: 'amount + region > 3'", "`+` on a number and text"),
        (BILLS, "where: 'amount contains \"5\"'", "`contains` needs text on its left"),
        (BILLS, "where: 'hour(amount) > 3'", "`hour` takes a timestamp, not a number"),
        (BILLS, 'where: \'tier in ["gold", "diamond"]\'', "'diamond' is never a value here"),
        (BILLS, 'where: {amount: {gt: "5"}}', "operator `gt`: compares a number with text ('5')"),
        (MATCH_RULE, "where: {tier: golden}", "operator `eq`: 'golden' is never a value here"),
        (MATCH_RULE, "where: {satisfaction: {contains: x}}", "needs a text field"),
    ],
)
def test_a_condition_that_can_never_hold_is_a_located_error(tmp_path: Path, rule: str, where: str, message: str) -> None:
    error = located_error(tmp_path, rule, (WHERE, where))
    assert message in error, error
    assert error.split(": ", 1)[0].count(":") == 2, error  # file:line:column


def test_each_clause_is_checked_against_its_own_event_types(tmp_path: Path) -> None:
    stop = "    stop: {on: order.completed, where: 'resolution == \"resolved\"'}\n"
    error = located_error(tmp_path, SLA_RULE, ("    stop: {on: order.completed}\n", stop))
    assert "order.completed events have no field `resolution`" in error
    remembered = located_error(tmp_path, FIRST_BILL, ("amount > 1.2 * order.monthly_fee", "amount > order.plan_id"))
    assert "`>` compares a number with text" in remembered  # a remembered field has its type too


@pytest.mark.parametrize(
    "where",
    [
        'where: \'is_first_bill and amount > 1.2 * coalesce(plan_fee, 0) and region in ["台州", "温州"]\'',
        'where: \'tier in ["gold", "platinum"] and attrs.vip == true and len(cycle) == 7\'',
        "where: 'event_type == \"bill.issued\" and hour(ts) >= 22 and ts - ts < 48h and amount != null'",
        "where: {amount: {gt: 100}, tier: gold, region: {in: [台州]}, attrs.plan: x}",
    ],
)
def test_what_rules_usually_write_still_loads(where: str) -> None:
    text = BILLS.replace(WHERE, where).replace("\n    ", "\n").lstrip()
    result = load_rule_text(text, "r.yaml")
    assert result.ok, [str(e) for e in result.errors]
