"""Load rule files: YAML → typed spec → compiled rule, or errors with ``file:line:column``.

A file holds one rule (a mapping with ``id``) or several (``rules: [...]``).
Any error in a file loads nothing from that file; other files still load.
Rule ids must be unique across the directory. A rule's version is its
``version`` field or, when absent, a hash of its content.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec
import yaml

from rules.errors import SpecError
from rules.registry import rule_types
from rules.template import TemplateError
from rules.yaml_marks import Marks, load_with_marks
from yujing.alerts import SEVERITIES
from yujing.protocols import Rule

__all__ = ["LoadResult", "RuleError", "load_rule_file", "load_rule_text", "load_rule_texts", "load_rules", "rule_files"]

_MSGSPEC_PATH = re.compile(r" - at `\$(.*)`$")
_PATH_PART = re.compile(r"\.([^.\[]+)|\[(\d+)\]")


@dataclass(frozen=True)
class RuleError:
    """A located problem in a rule file."""

    file: str
    line: int
    column: int
    message: str
    hint: str = ""

    def __str__(self) -> str:
        text = f"{self.file}:{self.line}:{self.column}: {self.message}"
        return f"{text}\n    hint: {self.hint}" if self.hint else text


@dataclass
class LoadResult:
    """Compiled rules and the errors of the files that did not load."""

    rules: list[Rule] = field(default_factory=list)
    errors: list[RuleError] = field(default_factory=list)
    files: int = 0
    disabled: list[str] = field(default_factory=list)  # ids of rules present with ``enabled: false``

    @property
    def ok(self) -> bool:
        return not self.errors


def rule_files(directory: Path) -> list[Path]:
    """Rule files under ``directory`` (``*.yaml``/``*.yml``, not ``*.test.yaml`` nor the ``*.policy.yaml``
    alert-handling policy), sorted."""
    found = [p for ext in ("*.yaml", "*.yml") for p in directory.rglob(ext)]
    return sorted(p for p in found if not p.name.endswith((".test.yaml", ".test.yml", ".policy.yaml", ".policy.yml")))


def _locate(marks: Marks, base: tuple[str | int, ...], path: tuple[str | int, ...], at_key: bool = False) -> tuple[int, int]:
    full = (*base, *path)
    if at_key and (*full, "~key") in marks:
        return marks[(*full, "~key")]
    while full:
        if full in marks:
            return marks[full]
        parent = full[:-1]
        if isinstance(full[-1], str) and (*parent, full[-1], "~key") in marks:
            return marks[(*parent, full[-1], "~key")]
        full = parent
    return marks.get((), (1, 1))


def _msgspec_path(message: str) -> tuple[tuple[str | int, ...], str]:
    """The path a msgspec error points at, and its message prefixed with that path."""
    m = _MSGSPEC_PATH.search(message)
    parts: list[str | int] = [int(i) if i else k for k, i in _PATH_PART.findall(m.group(1))] if m else []
    text = message[: m.start()] if m else message
    unknown = re.match(r"Object contains unknown field `([^`]+)`", text)
    if unknown:
        parts.append(unknown.group(1))
        text = f"unknown key `{unknown.group(1)}`"
    elif parts:
        text = f"`{'.'.join(str(p) for p in parts)}`: {text}"
    return tuple(parts), text


def _hint(message: str, doc: Any) -> str:
    if "`$.severity`" in message:
        return "severity is one of: " + ", ".join(SEVERITIES)
    if "unknown field" in message:
        kind = doc.get("type") if isinstance(doc, dict) else None
        spec = rule_types().get(kind) if isinstance(kind, str) else None
        if spec:
            return f"keys of a `{kind}` rule: " + ", ".join(spec.spec.__struct_fields__)
    if "missing required field" in message:
        return "see rules/schema/rule.schema.json for every rule type's keys"
    return ""


def _version(doc: dict[str, Any]) -> str:
    explicit = doc.get("version")
    if explicit:
        return str(explicit)
    canonical = json.dumps(doc, sort_keys=True, ensure_ascii=False, default=str)
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()[:12]


def load_rule_file(path: Path, display: str | None = None) -> LoadResult:
    """Compile every rule in one file, or none if any is wrong."""
    name = display or str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return LoadResult(errors=[RuleError(name, 1, 1, f"cannot read: {exc}")], files=1)
    return load_rule_text(text, name)


def load_rule_text(text: str, name: str) -> LoadResult:
    """Compile every rule in the YAML ``text`` of the file called ``name``, or none if any is wrong."""
    result = LoadResult(files=1)
    try:
        data, marks = load_with_marks(text, name)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        problem = getattr(exc, "problem", None) or str(exc)
        result.errors.append(RuleError(name, line, col, f"YAML error: {problem}", "check indentation and quoting"))
        return result
    if isinstance(data, dict) and "rules" in data and set(data) == {"rules"}:
        docs, base = data["rules"], ("rules",)
        if not isinstance(docs, list):
            result.errors.append(RuleError(name, *_locate(marks, base, ()), "`rules` must be a list of rules"))
            return result
    elif isinstance(data, dict):
        docs, base = [data], None
    else:
        result.errors.append(RuleError(name, 1, 1, "a rule file is a mapping (one rule) or `rules: [...]`"))
        return result
    types = rule_types()
    compiled: list[Rule] = []
    disabled: list[str] = []
    ids: dict[str, int] = {}
    for i, doc in enumerate(docs):
        at: tuple[str | int, ...] = () if base is None else (*base, i)
        if not isinstance(doc, dict):
            result.errors.append(RuleError(name, *_locate(marks, at, ()), "a rule is a mapping"))
            continue
        rule_id = doc.get("id")
        if isinstance(rule_id, str) and rule_id in ids:
            where = _locate(marks, at, ("id",))
            result.errors.append(RuleError(name, *where, f"duplicate rule id `{rule_id}` (also rule {ids[rule_id] + 1} of this file)"))
            continue
        if isinstance(rule_id, str):
            ids[rule_id] = i
        kind = doc.get("type")
        if not isinstance(kind, str) or kind not in types:  # `type: []` is not a crash
            result.errors.append(
                RuleError(name, *_locate(marks, at, ("type",)), f"unknown rule type {kind!r}", "rule types: " + ", ".join(sorted(types)))
            )
            continue
        try:
            spec = msgspec.convert(doc, types[kind].spec)
        except msgspec.ValidationError as exc:
            path, message = _msgspec_path(str(exc))
            where = _locate(marks, at, path, at_key=message.startswith("unknown key"))
            result.errors.append(RuleError(name, *where, message, _hint(str(exc), doc)))
            continue
        if not spec.enabled:
            disabled.append(spec.id)
            continue
        try:
            compiled.append(types[kind].build(spec, _version(doc)))
        except SpecError as exc:
            result.errors.append(RuleError(name, *_locate(marks, at, exc.path), str(exc), exc.hint))
        except TemplateError as exc:
            result.errors.append(RuleError(name, *_locate(marks, at, ("summary",)), str(exc)))
        except ValueError as exc:  # a value a rule type parses itself (a duration, an offset) not located by it
            result.errors.append(RuleError(name, *_locate(marks, at, ()), str(exc)))
    if not result.errors:
        result.rules, result.disabled = compiled, disabled
    return result


def load_rules(directory: Path | str) -> LoadResult:
    """Compile every rule file under ``directory``; ids must be unique."""
    root = Path(directory)
    if not root.exists():
        return LoadResult(errors=[RuleError(str(root), 1, 1, "no such file or directory", "check the path: nothing was loaded")])
    paths = [root] if root.is_file() else rule_files(root)
    return _combine((str(path), load_rule_file(path)) for path in paths)


def load_rule_texts(files: Mapping[str, str]) -> LoadResult:
    """Compile a set of rule files given as name → YAML text (a published bundle); ids must be unique."""
    return _combine((name, load_rule_text(text, name)) for name, text in sorted(files.items()))


def _combine(loaded: Iterable[tuple[str, LoadResult]]) -> LoadResult:
    total = LoadResult()
    seen: dict[str, str] = {}
    for path, one in loaded:
        total.files += 1
        total.errors.extend(one.errors)
        total.disabled.extend(one.disabled)
        clashes = [r.rule_id for r in one.rules if r.rule_id in seen]
        if clashes:
            total.errors.append(RuleError(str(path), 1, 1, f"duplicate rule id `{clashes[0]}` (also in {seen[clashes[0]]})"))
            continue
        for rule in one.rules:
            seen[rule.rule_id] = str(path)
            total.rules.append(rule)
    return total
