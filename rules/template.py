"""Summary templates: ``客户 {customer_id} 的订单 {order_id} 已超时`` filled from fields.

Only ``{name}`` and ``{attrs.name}`` placeholders exist; there is no format
spec, indexing or attribute access, so a template cannot reach interpreter
objects (unlike ``str.format``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from rules.fields import FieldError, compile_field

__all__ = ["Template", "TemplateError", "as_text"]

_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)?)\}")


class TemplateError(ValueError):
    """A placeholder that names no field or variable."""


class Template:
    """A compiled summary template.

    >>> t = Template("订单 {order_id} 超时 {late}", variables={"late"})
    >>> class E: order_id = "o-1"
    >>> t.render(E(), {"late": "2h"})
    '订单 o-1 超时 2h'
    """

    def __init__(self, text: str, variables: frozenset[str] | set[str] = frozenset(), fields: tuple[str, ...] | None = None) -> None:
        """``fields`` (when given) are the only event fields the alert knows, e.g. a window rule's group fields."""
        self.text = text
        self.pieces: list[str | tuple[str, Callable[[Any], Any] | None]] = []
        pos = 0
        for m in _PLACEHOLDER.finditer(text):
            self.pieces.append(text[pos : m.start()])
            name = m.group(1)
            if name in variables:
                self.pieces.append((name, None))
            elif fields is not None and name not in fields:
                known = ", ".join([*fields, *sorted(variables)])
                raise TemplateError(f"placeholder {{{name}}}: this rule's alerts know only {known}")
            else:
                try:
                    self.pieces.append((name, compile_field(name)))
                except FieldError as exc:
                    extra = f" or a variable of this rule type ({', '.join(sorted(variables))})" if variables else ""
                    raise TemplateError(f"placeholder {{{name}}}: {exc}{extra}") from None
            pos = m.end()
        self.pieces.append(text[pos:])

    @property
    def fields(self) -> tuple[str, ...]:
        """The event fields the template reads (its placeholders that are not variables)."""
        return tuple(dict.fromkeys(p[0] for p in self.pieces if not isinstance(p, str) and p[1] is not None))

    def render(self, source: Any, variables: Mapping[str, Any] | None = None) -> str:
        out = []
        for piece in self.pieces:
            if isinstance(piece, str):
                out.append(piece)
                continue
            name, get = piece
            value = variables.get(name) if get is None and variables else (get(source) if get else None)
            out.append(as_text(value))
        return "".join(out)


def as_text(value: Any) -> str:
    """How a value reads in a summary: nothing for null, ``129`` for ``129.0``."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return str(value)
