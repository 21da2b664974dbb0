"""YAML → Python values, remembering where each value stood (line and column)."""

from __future__ import annotations

from typing import Any

import yaml

__all__ = ["Marks", "load_with_marks"]

Path = tuple[str | int, ...]
Marks = dict[Path, tuple[int, int]]


class _Loader(yaml.SafeLoader):
    """Safe loader (no Python tags); node marks are read before construction."""


def _walk(node: yaml.Node, loader: _Loader, path: Path, marks: Marks) -> Any:
    marks[path] = (node.start_mark.line + 1, node.start_mark.column + 1)
    if isinstance(node, yaml.MappingNode):
        loader.flatten_mapping(node)
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise yaml.constructor.ConstructorError(None, None, "a mapping key must be a name", key_node.start_mark)
            # Keys are names, taken as written: YAML 1.1 would read `on:` as true.
            key = key_node.value
            if key in out:
                raise yaml.constructor.ConstructorError(None, None, f"duplicate key `{key}`", key_node.start_mark)
            marks[(*path, key, "~key")] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            out[key] = _walk(value_node, loader, (*path, key), marks)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_walk(child, loader, (*path, i), marks) for i, child in enumerate(node.value)]
    return loader.construct_object(node, deep=True)


def load_with_marks(text: str, filename: str = "<string>") -> tuple[Any, Marks]:
    """Parse one YAML document; raises :class:`yaml.YAMLError` with its mark on bad YAML."""
    loader = _Loader(text)
    loader.name = filename
    try:
        node = loader.get_single_node()
        marks: Marks = {}
        if node is None:
            return None, marks
        return _walk(node, loader, (), marks), marks
    finally:
        loader.dispose()
