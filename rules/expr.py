"""A small, safe expression language for rule conditions, compiled once into closures.

.. code-block:: yaml

    where: "amount > 1.2 * coalesce(plan_fee, 0) and region in ['台州', '温州']"
    where: "text matches '断(网|线)' or text contains_any ['多扣费', '乱收费']"
    where: "promised_at - ts > 48h and hour(ts) >= 22"

What it has:

- field paths (``amount``, ``attrs.plan``; in ``compare`` rules also the
  remembered ``order.monthly_fee``), literals (numbers, ``'text'``,
  ``true false null``, lists ``[1, 2]``, durations ``30s 15m 48h 7d`` in seconds);
- ``and or not``, ``== != < <= > >=``, ``in``, ``not in``, ``contains``,
  ``contains_any``, ``starts_with``, ``matches`` (regular expressions through
  RE2, linear time, compiled when the rule loads);
- ``+ - * / %``; a timestamp minus a timestamp is seconds, a timestamp plus
  seconds is a timestamp;
- functions: ``len lower upper abs min max round coalesce`` and the time
  helpers ``hour weekday day epoch`` (in the event's own UTC offset).

Null-safe: a missing field is ``null``; arithmetic on ``null`` is ``null``;
a comparison with ``null`` is false (except ``== null`` / ``!= null``); a type
mismatch (text + number) is ``null``, never an exception. Nothing is ever
evaluated as Python and no attribute of an interpreter object is reachable:
a name is a field path checked against the event contract when the rule loads.
"""

from __future__ import annotations

import datetime as dt
import operator
import re
from collections.abc import Callable
from typing import Any

from rules.errors import SpecError
from rules.field_types import ANY, FieldType, static_type
from rules.fields import FieldError, Getter, compile_field

__all__ = ["FUNCTIONS", "MAX_PATTERN", "ExprError", "compile_expr", "compile_regex", "literal_type", "required_equalities"]

Fn = Callable[[Any], Any]
Resolver = Callable[[str], Getter]

#: The longest regular expression a rule may carry.
MAX_PATTERN = 1000

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_TOKEN = re.compile(
    r"""\s*(?:
      (?P<dur>\d+(?:\.\d+)?(?:ms|s|m|h|d|w))(?![A-Za-z0-9_])
    | (?P<num>\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)
    | (?P<str>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
    | (?P<name>[^\W\d][\w]*(?:\.[^\W\d][\w]*)*)
    | (?P<op>==|!=|<=|>=|[<>+\-*/%(),\[\]])
    )""",
    re.VERBOSE,
)
_ARITHMETIC = frozenset({"+", "-", "*", "/", "%"})
_KEYWORDS = {"and", "or", "not", "in", "true", "false", "null", "contains", "contains_any", "starts_with", "matches"}
_WORD_OPS = ("contains", "contains_any", "starts_with", "matches")


class ExprError(SpecError):
    """An expression that does not compile; the message gives the column inside the expression."""


# -- null-safe primitives ------------------------------------------------------------------


def _epoch(v: Any) -> Any:
    return v.timestamp() if isinstance(v, dt.datetime) else v


def _number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _arith(op: Callable[[Any, Any], Any], name: str) -> Callable[[Any, Any], Any]:
    def apply(a: Any, b: Any) -> Any:
        if a is None or b is None:
            return None
        if isinstance(a, dt.datetime) or isinstance(b, dt.datetime):
            if name == "-" and isinstance(a, dt.datetime) and isinstance(b, dt.datetime):
                return (a - b).total_seconds()
            if name in "+-" and isinstance(a, dt.datetime) and _number(b):
                return op(a, dt.timedelta(seconds=b))
            if name == "+" and _number(a) and isinstance(b, dt.datetime):
                return b + dt.timedelta(seconds=a)
            return None
        if name == "+" and isinstance(a, str) and isinstance(b, str):
            return a + b
        if not (_number(a) and _number(b)):
            return None
        try:
            return op(a, b)
        except (ArithmeticError, ValueError):
            return None

    return apply


def _compare(op: Callable[[Any, Any], bool]) -> Callable[[Any, Any], bool]:
    def apply(a: Any, b: Any) -> bool:
        if a is None or b is None:
            return False
        if isinstance(a, dt.datetime) != isinstance(b, dt.datetime):
            a, b = _epoch(a), _epoch(b)
        try:
            return bool(op(a, b))
        except TypeError:
            return False

    return apply


def _equal(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return a is b
    if isinstance(a, bool) != isinstance(b, bool):
        return False
    if isinstance(a, dt.datetime) != isinstance(b, dt.datetime):
        return bool(_epoch(a) == _epoch(b))
    return bool(a == b)


def _member(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return False
    if isinstance(b, str):
        return isinstance(a, str) and a in b
    if isinstance(b, list | tuple | frozenset | set):
        return any(_equal(a, x) for x in b)
    return False


def _contains(a: Any, b: Any) -> bool:
    if isinstance(a, str):
        return isinstance(b, str) and b in a
    return _member(b, a) if isinstance(a, list | tuple) else False


def _contains_any(a: Any, b: Any) -> bool:
    if not isinstance(b, list | tuple):
        return False
    return any(_contains(a, x) for x in b)


def _starts_with(a: Any, b: Any) -> bool:
    return isinstance(a, str) and isinstance(b, str) and a.startswith(b)


_BINARY: dict[str, Callable[[Any, Any], Any]] = {
    "+": _arith(operator.add, "+"),
    "-": _arith(operator.sub, "-"),
    "*": _arith(operator.mul, "*"),
    "/": _arith(operator.truediv, "/"),
    "%": _arith(operator.mod, "%"),
    "==": _equal,
    "!=": lambda a, b: not _equal(a, b),
    "<": _compare(operator.lt),
    "<=": _compare(operator.le),
    ">": _compare(operator.gt),
    ">=": _compare(operator.ge),
    "in": _member,
    "not in": lambda a, b: a is not None and b is not None and not _member(a, b),
    "contains": _contains,
    "contains_any": _contains_any,
    "starts_with": _starts_with,
}


def _local(v: Any) -> dt.datetime | None:
    return v if isinstance(v, dt.datetime) else None


def _min_max(pick: Callable[..., Any]) -> Callable[..., Any]:
    def apply(*args: Any) -> Any:
        values = [a for a in args if a is not None]
        try:
            return pick(values) if values else None
        except TypeError:
            return None

    return apply


def _one(f: Callable[[Any], Any], accepts: Callable[[Any], bool]) -> Callable[[Any], Any]:
    return lambda v: f(v) if v is not None and accepts(v) else None


#: name → (function, fewest arguments, most arguments or None for any number)
FUNCTIONS: dict[str, tuple[Callable[..., Any], int, int | None]] = {
    "len": (_one(len, lambda v: isinstance(v, str | list | tuple | dict)), 1, 1),
    "lower": (_one(str.lower, lambda v: isinstance(v, str)), 1, 1),
    "upper": (_one(str.upper, lambda v: isinstance(v, str)), 1, 1),
    "abs": (_one(abs, _number), 1, 1),
    "round": (lambda v, n=0: round(v, int(n)) if _number(v) and _number(n) else None, 1, 2),
    "min": (_min_max(min), 1, None),
    "max": (_min_max(max), 1, None),
    "coalesce": (lambda *args: next((a for a in args if a is not None), None), 1, None),
    "hour": (lambda v: d.hour if (d := _local(v)) else None, 1, 1),
    "weekday": (lambda v: d.isoweekday() if (d := _local(v)) else None, 1, 1),  # 1 = Monday … 7 = Sunday
    "day": (lambda v: d.day if (d := _local(v)) else None, 1, 1),
    "epoch": (lambda v: d.timestamp() if (d := _local(v)) else None, 1, 1),
}


def compile_regex(pattern: str) -> Callable[[str], bool]:
    """A search predicate through RE2 (linear time); ``ValueError`` when RE2 rejects the pattern."""
    import re2

    if len(pattern) > MAX_PATTERN:
        raise ValueError(f"the pattern is {len(pattern)} characters; at most {MAX_PATTERN}")
    options = re2.Options()
    options.max_mem = 8 << 20
    options.log_errors = False
    try:
        compiled = re2.compile(pattern, options)
    except re2.error as exc:
        reason = exc.args[0].decode(errors="replace") if exc.args and isinstance(exc.args[0], bytes) else str(exc)
        raise ValueError(f"RE2 rejects the pattern ({reason}); RE2 has no backreferences or lookaround") from None
    return lambda text: compiled.search(text) is not None


# -- parsing -----------------------------------------------------------------------------------


class _Token:
    __slots__ = ("col", "kind", "text", "value")

    def __init__(self, kind: str, text: str, value: Any, col: int) -> None:
        self.kind, self.text, self.value, self.col = kind, text, value, col


def _unquote(raw: str) -> str:
    """The text between the quotes; ``\\ \\' \\" \\n \\t`` are escapes, any other backslash stays (regex ``\\d``)."""
    escapes = {"\\": "\\", "'": "'", '"': '"', "n": "\n", "t": "\t"}
    return re.sub(r"\\(.)", lambda m: escapes.get(m.group(1), m.group(0)), raw[1:-1])


def _tokens(text: str, where: tuple[str | int, ...]) -> list[_Token]:
    out: list[_Token] = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            col = pos + len(text[pos:]) - len(text[pos:].lstrip()) + 1
            raise ExprError(f"column {col}: cannot read `{text[col - 1 : col + 9]}`", where)
        col = m.start(m.lastgroup or 0) + 1
        kind = m.lastgroup or ""
        raw = m.group(kind)
        if kind == "dur":
            unit = "ms" if raw.endswith("ms") else raw[-1]
            value: Any = float(raw[: -len(unit)]) * _UNITS[unit]
            kind = "num"
        elif kind == "num":
            value = float(raw) if any(c in raw for c in ".eE") else int(raw)
        elif kind == "str":
            value = _unquote(raw)
        elif kind == "name" and raw in _KEYWORDS:
            kind, value = "kw", raw
        else:
            value = raw
        out.append(_Token(kind, raw, value, col))
        pos = m.end()
    out.append(_Token("end", "", None, len(text) + 1))
    return out


Node = tuple[Fn, Any, FieldType]  # the compiled function, its value when constant, its static type

NUM, TEXT, BOOL, TIME, LIST, NULL = (FieldType(k) for k in ("num", "str", "bool", "time", "list", "null"))
#: What each function gives, and the kinds its first argument may be (``None``: any).
_RESULTS: dict[str, tuple[FieldType | None, tuple[str, ...] | None]] = {
    "len": (NUM, ("str", "list")),
    "lower": (TEXT, ("str",)),
    "upper": (TEXT, ("str",)),
    "abs": (NUM, ("num",)),
    "round": (NUM, ("num",)),
    "min": (None, None),
    "max": (None, None),
    "coalesce": (None, None),
    "hour": (NUM, ("time",)),
    "weekday": (NUM, ("time",)),
    "day": (NUM, ("time",)),
    "epoch": (NUM, ("time",)),
}


def literal_type(value: Any) -> FieldType:
    """The static type of a literal value."""
    if value is None:
        return NULL
    if isinstance(value, bool):
        return BOOL
    if isinstance(value, int | float):
        return NUM
    if isinstance(value, str):
        return TEXT
    if isinstance(value, list):
        return LIST
    return ANY


def _known(t: FieldType) -> bool:
    return t.kind not in ("any", "null")


class _Parser:
    """Precedence climbing: or < and < not < comparison < + - < * / % < unary minus < atoms.

    Every node carries a static type (fields from the event contract through a typed resolver, see
    :mod:`rules.field_types`), so a comparison of text with a number, an enum with a value it never
    has, or text arithmetic is an error with its column when the rule loads, not a rule that never matches.
    """

    def __init__(self, text: str, resolve: Resolver, where: tuple[str | int, ...]) -> None:
        self.text = text
        self.resolve = resolve
        self.where = where
        self.toks = _tokens(text, where)
        self.i = 0

    # helpers
    @property
    def tok(self) -> _Token:
        return self.toks[self.i]

    def error(self, message: str, tok: _Token | None = None) -> ExprError:
        at = tok or self.tok
        return ExprError(f"column {at.col}: {message}", self.where)

    def take(self, kind: str, text: str | None = None) -> _Token | None:
        tok = self.tok
        if tok.kind == kind and (text is None or tok.text == text):
            self.i += 1
            return tok
        return None

    def expect(self, kind: str, text: str) -> _Token:
        tok = self.take(kind, text)
        if tok is None:
            got = self.tok.text or "the end"
            raise self.error(f"expected `{text}`, found `{got}`")
        return tok

    # grammar
    def parse(self) -> tuple[Fn, Any]:
        fn, const, _ = self.or_()
        if self.tok.kind != "end":
            raise self.error(f"unexpected `{self.tok.text}`")
        return fn, const

    def or_(self) -> Node:
        left = self.and_()
        parts = [left]
        while self.take("kw", "or"):
            parts.append(self.and_())
        if len(parts) == 1:
            return left
        fns = tuple(p[0] for p in parts)
        return (lambda e: any(bool(f(e)) for f in fns)), _NOCONST, BOOL

    def and_(self) -> Node:
        left = self.not_()
        parts = [left]
        while self.take("kw", "and"):
            parts.append(self.not_())
        if len(parts) == 1:
            return left
        fns = tuple(p[0] for p in parts)
        return (lambda e: all(bool(f(e)) for f in fns)), _NOCONST, BOOL

    def not_(self) -> Node:
        if self.take("kw", "not"):
            inner, _, _ = self.not_()
            return (lambda e: not inner(e)), _NOCONST, BOOL
        return self.comparison()

    def comparison(self) -> Node:
        left = self.additive()
        tok = self.tok
        if tok.kind == "op" and tok.text in ("==", "!=", "<", "<=", ">", ">="):
            op = tok.text
            self.i += 1
        elif tok.kind == "kw" and tok.text == "not" and self.toks[self.i + 1].text == "in":
            op = "not in"
            self.i += 2
        elif tok.kind == "kw" and tok.text in ("in", *_WORD_OPS):
            op = tok.text
            self.i += 1
        else:
            return left
        right_tok = self.tok
        right = self.additive()
        self.check_types(op, left, right, tok, right_tok)
        if op == "matches":
            pattern = right[1]
            if not isinstance(pattern, str):
                raise self.error("`matches` takes a literal pattern in quotes", right_tok)
            try:
                search = compile_regex(pattern)
            except ValueError as exc:
                raise self.error(str(exc), right_tok) from None
            get = left[0]
            return (lambda e: isinstance(v := get(e), str) and search(v)), _NOCONST, BOOL
        if op == "contains_any" and right[1] is not _NOCONST and not isinstance(right[1], list):
            raise self.error("`contains_any` takes a list, e.g. ['断网', '掉线']", right_tok)
        fn, const, _ = self.binary(op, left, right)
        return fn, const, BOOL

    def check_types(self, op: str, left: Node, right: Node, op_tok: _Token, right_tok: _Token) -> None:
        """Refuse what can never hold: text against a number, a value an enum field never has."""
        lt, rt = left[2], right[2]
        if op in ("<", "<=", ">", ">=") and _known(lt) and _known(rt) and lt.kind != rt.kind:
            raise self.error(f"`{op}` compares {lt.describe()} with {rt.describe()}", op_tok)
        if op in ("==", "!="):
            for field, other, const in ((lt, rt, right[1]), (rt, lt, left[1])):
                if _known(field) and _known(other) and field.kind != other.kind:
                    raise self.error(f"`{op}` compares {field.describe()} with {other.describe()}", op_tok)
                if field.values is not None and isinstance(const, str) and const not in field.values:
                    raise self.error(f"{const!r} is never a value here: one of {', '.join(sorted(field.values))}", right_tok)
        if op in ("in", "not in") and isinstance(right[1], list):
            for item in right[1]:
                if _known(lt) and _known(literal_type(item)) and literal_type(item).kind != lt.kind:
                    raise self.error(f"`{op}` lists {literal_type(item).describe()} for {lt.describe()}", right_tok)
                if lt.values is not None and isinstance(item, str) and item not in lt.values:
                    raise self.error(f"{item!r} is never a value here: one of {', '.join(sorted(lt.values))}", right_tok)
        if op in ("contains", "starts_with", "matches") and _known(lt) and lt.kind not in ("str", "list"):
            raise self.error(f"`{op}` needs text on its left, not {lt.describe()}", op_tok)
        if op in ("starts_with", "matches", "contains") and _known(rt) and lt.kind == "str" and rt.kind != "str":
            raise self.error(f"`{op}` needs text on its right, not {rt.describe()}", right_tok)

    def binary(self, op: str, left: Node, right: Node, op_tok: _Token | None = None) -> Node:
        apply = _BINARY[op]
        (lf, lc, lt), (rf, rc, rt) = left, right
        result = ANY
        if op in _ARITHMETIC and _known(lt) and _known(rt):
            if "str" in (lt.kind, rt.kind) or "bool" in (lt.kind, rt.kind):
                raise self.error(f"`{op}` on {lt.describe()} and {rt.describe()}", op_tok)
            if lt.kind == "time" and rt.kind == "time":
                result = NUM if op == "-" else ANY
            elif "time" in (lt.kind, rt.kind):
                result = TIME if op in "+-" else ANY
            else:
                result = NUM
        if lc is not _NOCONST and rc is not _NOCONST:
            value = apply(lc, rc)
            return (lambda e: value), value, literal_type(value)
        if rc is not _NOCONST:
            if op == "in" and isinstance(rc, list) and all(isinstance(x, str) for x in rc):
                members = frozenset(rc)
                return (lambda e: isinstance(v := lf(e), str) and v in members), _NOCONST, BOOL
            return (lambda e: apply(lf(e), rc)), _NOCONST, result
        return (lambda e: apply(lf(e), rf(e))), _NOCONST, result

    def additive(self) -> Node:
        left = self.multiplicative()
        while self.tok.kind == "op" and self.tok.text in ("+", "-"):
            op_tok = self.tok
            self.i += 1
            left = self.binary(op_tok.text, left, self.multiplicative(), op_tok)
        return left

    def multiplicative(self) -> Node:
        left = self.unary()
        while self.tok.kind == "op" and self.tok.text in ("*", "/", "%"):
            op_tok = self.tok
            self.i += 1
            left = self.binary(op_tok.text, left, self.unary(), op_tok)
        return left

    def unary(self) -> Node:
        minus = self.take("op", "-")
        if minus:
            inner, const, kind = self.unary()
            if _known(kind) and kind.kind != "num":
                raise self.error(f"`-` on {kind.describe()}", minus)
            if const is not _NOCONST:
                value = -const if _number(const) else None
                return (lambda e: value), value, NUM
            return (lambda e: -v if _number(v := inner(e)) else None), _NOCONST, NUM
        return self.atom()

    def atom(self) -> Node:
        tok = self.tok
        if tok.kind in ("num", "str", "dur"):
            self.i += 1
            value = tok.value
            return (lambda e: value), value, literal_type(value)
        if tok.kind == "kw" and tok.text in ("true", "false", "null"):
            self.i += 1
            value = {"true": True, "false": False, "null": None}[tok.text]
            return (lambda e: value), value, literal_type(value)
        if self.take("op", "("):
            inner = self.or_()
            self.expect("op", ")")
            return inner
        if self.take("op", "["):
            items = self.items("]")
            if all(c is not _NOCONST for _, c, _ in items):
                value = [c for _, c, _ in items]
                return (lambda e: value), value, LIST
            fns = tuple(f for f, _, _ in items)
            return (lambda e: [f(e) for f in fns]), _NOCONST, LIST
        if tok.kind == "name":
            self.i += 1
            if self.take("op", "("):
                return self.call(tok)
            try:
                get = self.resolve(tok.text)
            except FieldError as exc:
                raise self.error(str(exc), tok) from None
            return get, _NOCONST, static_type(get)
        if tok.kind == "kw":
            raise self.error(f"`{tok.text}` needs a value before it", tok)
        raise self.error(f"expected a value, found `{tok.text or 'the end'}`", tok)

    def items(self, close: str) -> list[Node]:
        items: list[Node] = []
        if self.take("op", close):
            return items
        while True:
            items.append(self.or_())
            if self.take("op", close):
                return items
            self.expect("op", ",")

    def call(self, name: _Token) -> Node:
        entry = FUNCTIONS.get(name.text)
        if entry is None:
            raise self.error(f"unknown function `{name.text}`; functions are: {', '.join(FUNCTIONS)}", name)
        func, fewest, most = entry
        args = self.items(")")
        if len(args) < fewest or (most is not None and len(args) > most):
            want = str(fewest) if most == fewest else f"{fewest} or more" if most is None else f"{fewest} to {most}"
            raise self.error(f"`{name.text}` takes {want} argument(s), got {len(args)}", name)
        result, accepts = _RESULTS.get(name.text, (None, None))
        first = args[0][2]
        if accepts is not None and _known(first) and first.kind not in accepts:
            raise self.error(f"`{name.text}` takes {' or '.join(FieldType(k).describe() for k in accepts)}, not {first.describe()}", name)
        kind = result or FieldType(first.kind)
        fns = tuple(f for f, _, _ in args)
        if len(fns) == 1:
            only = fns[0]
            return (lambda e: func(only(e))), _NOCONST, kind
        return (lambda e: func(*[f(e) for f in fns])), _NOCONST, kind


class _NoConst:
    __slots__ = ()

    def __repr__(self) -> str:
        return "<not constant>"


_NOCONST: Any = _NoConst()


def compile_expr(text: str, where: tuple[str | int, ...] = ("where",), resolve: Resolver = compile_field) -> Fn:
    """Compile ``text`` into a function of one event (or scope) giving the expression's value.

    >>> from types import SimpleNamespace
    >>> e = SimpleNamespace(monthly_fee=129.0)
    >>> compile_expr("monthly_fee * 1.2 > 150")(e)
    True
    >>> compile_expr("attrs.plan == 'x'")(e)  # no attrs: null, and null == 'x' is false
    False
    """
    if not isinstance(text, str) or not text.strip():
        raise ExprError("an expression is a non-empty string", where)
    fn, _ = _Parser(text, resolve, where).parse()
    return fn


def required_equalities(text: str) -> tuple[str, frozenset[str]] | None:
    """A ``field == 'x'`` or ``field in ['x', 'y']`` conjunct at the top level of ``text``, if there is one.

    Read off the expression's own tokens (so quoting works exactly as when it compiles);
    ``None`` when a top-level ``or`` makes no single test required, or the text does not read.

    >>> required_equalities("region == '台州' and (a or b)")
    ('region', frozenset({'台州'}))
    """
    try:
        tokens = _tokens(text, ())
    except ExprError:
        return None
    conjuncts: list[list[_Token]] = [[]]
    depth = 0
    for tok in tokens[:-1]:  # the last is the end marker
        if tok.kind == "op" and tok.text in "([":
            depth += 1
        elif tok.kind == "op" and tok.text in ")]":
            depth -= 1
        elif depth == 0 and tok.kind == "kw" and tok.text in ("and", "or"):
            if tok.text == "or":
                return None
            conjuncts.append([])
            continue
        conjuncts[-1].append(tok)
    for part in conjuncts:
        if len(part) < 3 or part[0].kind != "name":
            continue
        field = part[0].text
        if len(part) == 3 and part[1].text == "==" and part[2].kind == "str":
            return field, frozenset({part[2].value})
        if part[1].text == "in" and part[2].text == "[" and part[-1].text == "]":
            items, separators = part[3:-1:2], part[4:-1:2]
            if items and all(t.kind == "str" for t in items) and all(t.text == "," for t in separators):
                return field, frozenset(t.value for t in items)
    return None
