"""Conditions as data, compiled once into predicates.

A condition is a mapping. Its keys are field paths, each with a value to
equal or a mapping of operators, or one of ``all`` / ``any`` / ``not``.
All entries of one mapping must hold. A missing field satisfies no operator
except ``exists: false``.

.. code-block:: yaml

    where:
      text: {contains_any: [工信部, "315", 起诉]}
      tier: {in: [gold, platinum]}
      any:
        - {channel: 工信部申诉}
        - {attrs.vip: true}

Operators: ``eq ne lt le gt ge in not_in contains contains_any starts_with exists``.

A condition can also be an expression (:mod:`rules.expr`), alone or as the
``expr`` entry of a mapping::

    where: "is_first_bill and amount > 1.2 * plan_fee"
    where: {region: 台州, expr: "text matches '断(网|线)'"}

No expression is ever evaluated as Python.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from rules.errors import SpecError
from rules.expr import Resolver, compile_expr
from rules.field_types import FieldType, static_type, typed_resolver
from rules.fields import FieldError, compile_field

__all__ = ["OPERATORS", "Condition", "ConditionError", "Predicate", "compile_condition"]

Predicate = Callable[[Any], bool]
#: How a rule file writes a condition: an expression, or a mapping of field tests.
Condition = dict[str, Any] | str


class ConditionError(SpecError):
    """A condition that cannot compile; ``path`` locates it inside the rule."""


def _scalar(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float | bool)


def _cmp(op: Callable[[Any, Any], bool]) -> Callable[[Any], Callable[[Any], bool]]:
    def make(arg: Any) -> Callable[[Any], bool]:
        if not isinstance(arg, int | float | str) or isinstance(arg, bool):
            raise TypeError("needs a number or a string")

        def test(v: Any) -> bool:
            try:
                return v is not None and op(v, arg)
            except TypeError:
                return False

        return test

    return make


def _list_of_scalars(arg: Any) -> list[Any]:
    if not isinstance(arg, list) or not arg or not all(_scalar(a) for a in arg):
        raise TypeError("needs a non-empty list of values")
    return arg


def _in(arg: Any) -> Callable[[Any], bool]:
    values = frozenset(_list_of_scalars(arg))
    return lambda v: v is not None and v in values


def _not_in(arg: Any) -> Callable[[Any], bool]:
    values = frozenset(_list_of_scalars(arg))
    return lambda v: v is not None and v not in values


def _contains(arg: Any) -> Callable[[Any], bool]:
    if not isinstance(arg, str) or not arg:
        raise TypeError("needs a non-empty string")
    return lambda v: isinstance(v, str) and arg in v


def _contains_any(arg: Any) -> Callable[[Any], bool]:
    terms = tuple(str(t) for t in _list_of_scalars(arg))
    return lambda v: isinstance(v, str) and any(t in v for t in terms)


def _starts_with(arg: Any) -> Callable[[Any], bool]:
    if not isinstance(arg, str):
        raise TypeError("needs a string")
    return lambda v: isinstance(v, str) and v.startswith(arg)


def _exists(arg: Any) -> Callable[[Any], bool]:
    if not isinstance(arg, bool):
        raise TypeError("needs true or false")
    return (lambda v: v is not None) if arg else (lambda v: v is None)


def _eq(arg: Any) -> Callable[[Any], bool]:
    if not _scalar(arg):
        raise TypeError("needs a single value")
    if arg is None or isinstance(arg, bool):
        return lambda v: v is arg
    return lambda v: v is not None and not isinstance(v, bool) and v == arg


def _ne(arg: Any) -> Callable[[Any], bool]:
    equal = _eq(arg)
    return lambda v: v is not None and not equal(v)


OPERATORS: dict[str, Callable[[Any], Callable[[Any], bool]]] = {
    "eq": _eq,
    "ne": _ne,
    "lt": _cmp(lambda a, b: a < b),
    "le": _cmp(lambda a, b: a <= b),
    "gt": _cmp(lambda a, b: a > b),
    "ge": _cmp(lambda a, b: a >= b),
    "in": _in,
    "not_in": _not_in,
    "contains": _contains,
    "contains_any": _contains_any,
    "starts_with": _starts_with,
    "exists": _exists,
}


def _field_predicate(path: str, spec: Any, where: tuple[str | int, ...], resolve: Resolver) -> Predicate:
    try:
        get = resolve(path)
    except FieldError as exc:
        raise ConditionError(str(exc), where) from None
    ops = spec if isinstance(spec, dict) else {"eq": spec}
    if not ops:
        raise ConditionError("empty operator mapping", where)
    tests = []
    kind = static_type(get)
    for name, arg in ops.items():
        make = OPERATORS.get(name)
        if make is None:
            raise ConditionError(f"unknown operator `{name}`; use one of: {', '.join(OPERATORS)}", (*where, name))
        problem = _type_problem(name, arg, kind)
        if problem:
            raise ConditionError(f"operator `{name}`: {problem}", (*where, name) if isinstance(spec, dict) else where)
        try:
            tests.append(make(arg))
        except TypeError as exc:
            raise ConditionError(f"operator `{name}` {exc}", (*where, name)) from None
    if len(tests) == 1:
        test = tests[0]
        return lambda e: test(get(e))
    all_tests = tuple(tests)
    return lambda e: all(t(v) for v in (get(e),) for t in all_tests)


def _type_problem(op: str, arg: Any, field: FieldType) -> str | None:
    """Why ``field op arg`` can never hold (text against a number, a value the enum never has), or ``None``."""
    if field.kind in ("any", "null"):
        return None
    args = arg if op in ("in", "not_in", "contains_any") and isinstance(arg, list) else [arg]
    for value in args:
        if value is None or op == "exists":
            continue
        given = (
            "str" if isinstance(value, str) else "bool" if isinstance(value, bool) else "num" if isinstance(value, int | float) else None
        )
        if op in ("contains", "contains_any", "starts_with"):
            if field.kind not in ("str", "list"):
                return f"needs a text field, and this one is {field.describe()}"
            continue
        if given in ("str", "bool", "num") and given != field.kind and field.kind != "time":
            return f"compares {field.describe()} with {FieldType(given).describe()} ({value!r})"
        if field.values is not None and isinstance(value, str) and value not in field.values:
            return f"{value!r} is never a value here: one of {', '.join(sorted(field.values))}"
    return None


def _expression(text: Any, where: tuple[str | int, ...], resolve: Resolver) -> Predicate:
    if not isinstance(text, str):
        raise ConditionError("`expr` takes an expression in quotes", where)
    value = compile_expr(text, where, resolve)
    return lambda e: bool(value(e))


def compile_condition(
    cond: Any, where: tuple[str | int, ...] = ("where",), resolve: Resolver = compile_field, on: Iterable[str] | None = None
) -> Predicate:
    """Compile a condition (mapping or expression) into a predicate over events.

    ``resolve`` turns a field path into a getter; rules that remember earlier
    events (``compare``) pass one that also knows their names. ``on``, the event
    types the condition sees, checks fields and literals against the event
    contract (:mod:`rules.field_types`): a field those events lack, text compared
    with a number, an enum value that does not exist are located errors.
    """
    if on is not None:
        resolve = typed_resolver(on, resolve)
    if cond is None:
        return lambda e: True
    if isinstance(cond, str):
        return _expression(cond, where, resolve)
    if not isinstance(cond, dict) or not cond:
        raise ConditionError("a condition is an expression or a non-empty mapping of field: test", where)
    parts: list[Predicate] = []
    for key, value in cond.items():
        at = (*where, key)
        if key in ("all", "any"):
            if not isinstance(value, list) or not value:
                raise ConditionError(f"`{key}` takes a non-empty list of conditions", at)
            subs = tuple(compile_condition(c, (*at, i), resolve) for i, c in enumerate(value))
            parts.append((lambda e, s=subs: all(p(e) for p in s)) if key == "all" else (lambda e, s=subs: any(p(e) for p in s)))
        elif key == "not":
            sub = compile_condition(value, at, resolve)
            parts.append(lambda e, s=sub: not s(e))
        elif key == "expr":
            parts.append(_expression(value, at, resolve))
        else:
            parts.append(_field_predicate(str(key), value, at, resolve))
    if len(parts) == 1:
        return parts[0]
    all_parts = tuple(parts)
    return lambda e: all(p(e) for p in all_parts)
