"""The rule expression language: semantics, null safety, safety, and located errors."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rules.expr import ExprError, compile_expr
from tests.helpers import bill, complaint, order, to_event

TZ = dt.timezone(dt.timedelta(hours=8))


def ev(**fields: Any) -> SimpleNamespace:
    return SimpleNamespace(**fields)


@pytest.mark.parametrize(
    ("text", "fields", "expected"),
    [
        ("amount > 1.2 * plan_fee", {"amount": 219.5, "plan_fee": 129}, True),
        ("amount > 1.2 * plan_fee", {"amount": 150, "plan_fee": 129}, False),
        ("amount > 1.2 * plan_fee", {"amount": 219.5, "plan_fee": None}, False),  # null-safe
        ("amount - plan_fee >= 90.5", {"amount": 219.5, "plan_fee": 129}, True),
        ("region in ['台州', '温州']", {"region": "台州"}, True),
        ("region not in ['台州', '温州']", {"region": "台州"}, False),
        ("region not in ['台州']", {"region": None}, False),
        ("text contains '断网'", {"text": "家里宽带断网三天"}, True),
        ("text contains_any ['多扣费', '乱收费']", {"text": "这个月多扣费了"}, True),
        ("text contains_any ['多扣费', '乱收费']", {"text": None}, False),
        ("text matches '断(网|线)'", {"text": "又断线了"}, True),
        ("text matches '^断'", {"text": "网断了"}, False),
        ("channel starts_with '10000'", {"channel": "10000热线"}, True),
        ("not (tier == 'gold' or tier == 'platinum')", {"tier": "silver"}, True),
        ("tier == null", {"tier": None}, True),
        ("tier != null and len(tier) == 4", {"tier": "gold"}, True),
        ("coalesce(monthly_fee, plan_fee, 0) + 1", {"monthly_fee": None, "plan_fee": 5}, 6),
        ("-amount", {"amount": -3}, 3),
        ("amount / 0", {"amount": 1}, None),  # arithmetic errors are null, not exceptions
        ("amount + region", {"amount": 1, "region": "x"}, None),  # type mismatch is null
        ("max(amount, plan_fee, 3)", {"amount": 1, "plan_fee": None}, 3),
        ("round(amount, 1)", {"amount": 2.345}, 2.3),
        ("upper(lower(region))", {"region": "Ab"}, "AB"),
        ("1 + 2 * 3 - 4 / 2", {}, 5.0),
        ("(1 + 2) * 3 % 4", {}, 1),
        ("2h + 30m == 9000", {}, True),
        ("true and not false", {}, True),
    ],
)
def test_values(text: str, fields: dict[str, Any], expected: Any) -> None:
    names = {"amount", "plan_fee", "monthly_fee", "region", "text", "channel", "tier"}
    scope = ev(**{n: fields.get(n) for n in names})
    assert compile_expr(text)(scope) == expected


def test_time_arithmetic_and_helpers_use_the_events_own_offset() -> None:
    start = dt.datetime(2026, 3, 1, 22, 30, tzinfo=TZ)  # a Sunday
    scope = ev(ts=start, promised_at=start + dt.timedelta(hours=50))
    assert compile_expr("promised_at - ts > 48h")(scope) is True
    assert compile_expr("hour(ts) >= 22 and weekday(ts) == 7")(scope) is True
    assert compile_expr("ts + 2h > promised_at")(scope) is False
    assert compile_expr("epoch(ts) == 1772375400")(scope) is True
    assert compile_expr("promised_at > ts")(scope) is True


def test_on_real_events() -> None:
    b = to_event(bill(0, amount=219.5, plan_fee=129, is_first_bill=True))
    assert compile_expr("is_first_bill and amount > 1.2 * plan_fee")(b) is True
    o = to_event(order("created", 0, attrs={"vip": True, "plan": "BB-300M"}))
    assert compile_expr("attrs.vip == true and attrs.plan starts_with 'BB'")(o) is True
    c = to_event(complaint("opened", 0, text="我要打工信部投诉"))
    assert compile_expr("text matches '工信部|315'")(c) is True
    assert compile_expr("attrs.missing == null")(c) is True


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("amout > 1", "column 1: unknown field `amout`"),
        ("amount > ", "column 10: expected a value, found `the end`"),
        ("amount >> 1", "column 9: expected a value, found `>`"),
        ("len(text, 1) > 3", "column 1: `len` takes 1 argument(s), got 2"),
        ("exec('x')", "column 1: unknown function `exec`"),
        ("text matches '(a)\\1'", "column 14: RE2 rejects the pattern"),
        ("text matches '(?=x)y'", "column 14: RE2 rejects the pattern"),
        ("text matches region", "column 14: `matches` takes a literal pattern"),
        ("text contains_any '断网'", "column 19: `contains_any` takes a list"),
        ("(amount > 1", "expected `)`"),
        ("amount > 1 region", "column 12: unexpected `region`"),
        ("amount $ 1", "column 8: cannot read `$ 1`"),
        ("__class__ == 1", "unknown field `__class__`"),
        ("text.__len__ == 1", "field `text` has no sub-fields"),
        ("attrs.a.b == 1", "attrs.NAME"),
        ("and", "`and` needs a value before it"),
        ("", "non-empty string"),
    ],
)
def test_errors_name_the_column(text: str, message: str) -> None:
    with pytest.raises(ExprError) as info:
        compile_expr(text, ("where",))
    assert message in str(info.value)
    assert info.value.path == ("where",)


def test_patterns_are_bounded() -> None:
    with pytest.raises(ExprError, match="at most"):
        compile_expr("text matches '" + "a" * 2000 + "'")


def test_catastrophic_pattern_for_backtracking_engines_runs_in_linear_time() -> None:
    # (a+)+$ is exponential for a backtracking engine on 'aaaa…b'; RE2 answers at once.
    matches = compile_expr("text matches '(a+)+$'")
    assert matches(ev(text="a" * 50_000 + "b")) is False


json_values = st.none() | st.booleans() | st.integers(-5, 5) | st.floats(allow_nan=False, width=32) | st.text(max_size=4)


@given(a=json_values, b=json_values, op=st.sampled_from(["+", "-", "*", "/", "%", "==", "!=", "<", "<=", ">", ">=", "in", "contains"]))
def test_never_raises_whatever_the_values(a: Any, b: Any, op: str) -> None:
    fn = compile_expr(f"amount {op} plan_fee")
    result = fn(ev(amount=a, plan_fee=b))
    if op in ("==", "!=", "<", "<=", ">", ">=", "in", "contains"):
        assert isinstance(result, bool)
        if op not in ("==", "!=") and (a is None or b is None):
            assert result is False
